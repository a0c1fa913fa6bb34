//! The monitoring checks of issue 12 §4, run with the real tools:
//!
//! - `promtool check config` on both Prometheus files, `promtool check rules` and
//!   `promtool test rules` on the rules (with a check that every alert has a firing and a
//!   not-firing case, and that the unit tests catch a broken alert);
//! - `amtool check-config` and `amtool config routes test` on the Alertmanager file;
//! - every Grafana dashboard parsed by `grafana-foundation-sdk` in `.venv-sdk`
//!   (`tests/monitoring/dashboards.py`), every panel's PromQL lifted into a generated rules
//!   file and checked by `promtool check rules`;
//! - a live `gekko up` (paper mode, real Redis) and the `configd` and `healthd` binaries
//!   on the same Redis: every metric name a rule or a panel uses is in one of their
//!   `/metrics` (or in `monitoring/event-only-metrics.txt`, with the reason), and
//!   `promtool check metrics` finds nothing beyond `monitoring/metrics-lint-allow.txt` on
//!   any of them;
//! - a real Prometheus (1 s scrapes) and Alertmanager (`group_wait: 0s`) against a
//!   `gekko up` whose Binance.US venue is a simulator the test owns: the simulator is shut
//!   down, and the `GekkoVenueDisconnected` alert must reach a webhook the test listens on.
//!
//! A missing tool is a failure that says how to install it (`scripts/test.sh` installs
//! `prometheus` and `prometheus-alertmanager` from Debian's packages and creates
//! `.venv-sdk`). Each test owns its processes; they are killed when the test ends, a
//! panic included ([`Proc`]'s `Drop`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gekko_sim::binanceus::{SimBinanceUs, SimConfig};
use gekko_sim::llm::{Fault as LlmFault, LlmSim, LlmSimConfig, PAPER_KEY as LLM_KEY};
use gekko_testkit::{RedisServer, free_port};
use serde_json::Value;

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

const INSTALL: &str = "install it with scripts/test.sh, or \
    `apt-get install -y --no-install-recommends prometheus prometheus-alertmanager`";

/// A tool from `PATH`, or a failure that says how to get it.
fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    assert!(found, "`{name}` is not on PATH: {INSTALL}");
    Command::new(name)
}

/// The Python of `.venv-sdk`, where `grafana-foundation-sdk` and `pyyaml` are pinned.
fn python() -> Command {
    let py = root().join(".venv-sdk/bin/python");
    assert!(
        py.is_file(),
        "{} is missing: run scripts/test.sh, which creates .venv-sdk from \
         scripts/sdk-requirements.txt",
        py.display()
    );
    Command::new(py)
}

/// Runs `cmd` to completion and returns (exit code, stdout, stderr).
fn run(cmd: &mut Command, what: &str) -> (i32, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd`, which must succeed; returns stdout.
fn run_ok(cmd: &mut Command, what: &str) -> String {
    let (code, stdout, stderr) = run(cmd, what);
    assert_eq!(code, 0, "{what} failed:\n{stdout}\n{stderr}");
    stdout
}

/// A fresh private directory for one test.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gekko-monitoring-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn rule_files() -> Vec<PathBuf> {
    let dir = root().join("deploy/prometheus/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no rule files in {}", dir.display());
    files
}

fn dashboard_files() -> Vec<PathBuf> {
    let dir = root().join("deploy/grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// One rule of the rule files: (name, "record" or "alert", expr), read by
/// `monitoring/rule_exprs.py`.
fn rules() -> Vec<(String, String, String)> {
    let helper = root().join("services/gekko/tests/monitoring/rule_exprs.py");
    let out = run_ok(
        python().arg(helper).args(rule_files()),
        "rule_exprs.py on deploy/prometheus/rules",
    );
    let v: Vec<Value> = serde_json::from_str(&out).expect("rule_exprs.py prints JSON");
    v.iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["kind"].as_str().unwrap().to_owned(),
                r["expr"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The dashboards as `dashboards.py` parsed them: (exit code, JSON stdout, stderr).
fn lift_dashboards(files: &[PathBuf]) -> (i32, String, String) {
    let helper = root().join("services/gekko/tests/monitoring/dashboards.py");
    run(
        python().arg(helper).args(files),
        "dashboards.py (grafana-foundation-sdk)",
    )
}

/// (dashboard uid, panel title, expr) for every target of every panel.
fn dashboard_exprs(json: &str) -> Vec<(String, String, String)> {
    let v: Vec<Value> = serde_json::from_str(json).expect("dashboards.py prints JSON");
    let mut out = Vec::new();
    for d in &v {
        let uid = d["uid"].as_str().unwrap_or_default().to_owned();
        for p in d["panels"].as_array().unwrap() {
            for e in p["exprs"].as_array().unwrap() {
                out.push((
                    uid.clone(),
                    p["title"].as_str().unwrap_or_default().to_owned(),
                    e.as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

/// A rules file with one recording rule per expression, for `promtool check rules`.
/// JSON string quoting is valid YAML double-quoted scalar syntax.
fn lifted_rules_file(exprs: &[(String, String, String)]) -> String {
    let mut s = String::from("groups:\n  - name: lifted-dashboard-queries\n    rules:\n");
    for (i, (uid, _, expr)) in exprs.iter().enumerate() {
        let record = format!("dashboard:{}:expr{i}", uid.replace('-', "_"));
        s.push_str(&format!(
            "      - record: {record}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    s
}

/// The metric names a PromQL expression selects: label matchers, strings, ranges,
/// grouping lists, functions, aggregations and keywords removed.
fn metric_names(expr: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
    ];
    const LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Blank out strings, {label matchers} and [ranges].
    let mut clean = String::with_capacity(expr.len());
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    for c in expr.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            clean.push(' ');
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => {
                clean.push(c);
                continue;
            }
            _ => {}
        }
        clean.push(' ');
    }
    let chars: Vec<char> = clean.chars().collect();
    let next_non_space = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !(c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let after = next_non_space(i);
        let calls = after < chars.len() && chars[after] == '(';
        if LISTS.contains(&word.as_str()) && calls {
            // Skip the label list.
            i = after;
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            continue;
        }
        if KEYWORDS.contains(&word.as_str()) || calls {
            continue;
        }
        names.push(word);
    }
    names
}

/// Reads a `name | ... | reason` file, skipping comments and blank lines.
fn table(path: &Path) -> Vec<Vec<String>> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('|').map(|f| f.trim().to_owned()).collect())
        .collect()
}

/// A child process that is killed (and reaped) when dropped; its output goes to a file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        Self { child, log }
    }

    /// The process's output so far, for failure messages.
    fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(60).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn assert_running(&mut self, what: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{what} exited ({status}):\n{}", self.output());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    common::http_get(addr, path)
}

/// Polls `GET path` on `addr` until it answers 200; returns how long that took.
fn wait_http_ok(proc: &mut Proc, what: &str, addr: &str, path: &str) -> Duration {
    let started = Instant::now();
    loop {
        if let Some((200, _)) = http_get(addr, path) {
            return started.elapsed();
        }
        proc.assert_running(what);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} not ready at http://{addr}{path} within 30 s:\n{}",
            proc.output()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query against Prometheus: the result vector.
fn prom_query(addr: &str, q: &str) -> Vec<Value> {
    let Some((200, body)) = http_get(addr, &format!("/api/v1/query?query={}", urlencode(q))) else {
        return Vec::new();
    };
    // The body may be chunked; the JSON object is the part between the outer braces.
    let (Some(a), Some(b)) = (body.find('{'), body.rfind('}')) else {
        return Vec::new();
    };
    serde_json::from_str::<Value>(&body[a..=b])
        .ok()
        .and_then(|v| v["data"]["result"].as_array().cloned())
        .unwrap_or_default()
}

/// A webhook receiver on a free port: every POST's (path, body) arrives on the channel.
fn webhook() -> (u16, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    // A detached accept loop: it ends with the test binary, and owns nothing else.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if let Some(req) = read_request(stream)
                && tx.send(req).is_err()
            {
                return;
            }
        }
    });
    (port, rx)
}

fn read_request(mut s: TcpStream) -> Option<(String, String)> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1)?.to_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Some((path, body))
}

/// The firing alerts of an Alertmanager webhook body: (alertname, venue).
fn firing(body: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["status"] == "firing")
                .map(|x| {
                    (
                        x["labels"]["alertname"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        x["labels"]["venue"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Copies `deploy/prometheus` into `dir` for a live run: 1 s scrapes and evaluations,
/// every `for:` cut to 1 s, gekko and the Alertmanager as file-discovered targets.
fn live_prometheus_config(dir: &Path, gekko: &str, alertmanager: &str) -> PathBuf {
    let src = root().join("deploy/prometheus");
    let cfg = read(&src.join("prometheus-local.yml"))
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        .replace("refresh_interval: 5s", "refresh_interval: 1s");
    assert!(cfg.contains("scrape_interval: 1s") && cfg.contains("evaluation_interval: 1s"));
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::create_dir_all(dir.join("targets/alertmanager")).unwrap();
    for f in rule_files() {
        let text: String = read(&f)
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("for: ") {
                    let indent = l.len() - l.trim_start().len();
                    format!("{}for: 1s\n", " ".repeat(indent))
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(dir.join("rules").join(f.file_name().unwrap()), text).unwrap();
    }
    std::fs::write(
        dir.join("targets/gekko.json"),
        format!(r#"[{{"targets": ["{gekko}"], "labels": {{"job": "gekko"}}}}]"#),
    )
    .unwrap();
    std::fs::write(
        dir.join("targets/alertmanager/am.json"),
        format!(r#"[{{"targets": ["{alertmanager}"]}}]"#),
    )
    .unwrap();
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// The real Alertmanager file with its receivers pointed at the test's webhook and
/// `group_wait: 0s`.
fn live_alertmanager_config(dir: &Path, webhook: u16) -> PathBuf {
    let text = read(&root().join("deploy/alertmanager/alertmanager.yml"))
        .replace(
            "http://healthd:9500/alerts",
            &format!("http://127.0.0.1:{webhook}/healthd"),
        )
        .replace("group_wait: 10s", "group_wait: 0s");
    let text = with_generic_webhook(&text, &format!("http://127.0.0.1:{webhook}/generic"));
    assert!(
        text.contains("/healthd") && text.contains("/generic") && text.contains("group_wait: 0s")
    );
    let path = dir.join("alertmanager.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The example URL of the generic webhook's commented-out block in alertmanager.yml.
const GENERIC_EXAMPLE_URL: &str = "https://pager.example.com/alertmanager";

/// `alertmanager.yml` text with the generic webhook turned on as its comment says
/// (the block under `# generic-webhook: uncomment to enable` uncommented), sending to `url`.
fn with_generic_webhook(text: &str, url: &str) -> String {
    let (head, block) = text
        .split_once("    # generic-webhook: uncomment to enable\n")
        .expect("the documented generic-webhook block");
    let enabled: String = block
        .lines()
        .map(|l| match l.strip_prefix("    # ") {
            Some(rest) => format!("    {rest}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    assert!(
        enabled.contains("webhook_configs:") && enabled.contains(GENERIC_EXAMPLE_URL),
        "{enabled}"
    );
    format!("{head}{}", enabled.replace(GENERIC_EXAMPLE_URL, url))
}

fn start_prometheus(dir: &Path, config: &Path) -> (Proc, String) {
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let mut cmd = tool("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .current_dir(dir);
    (Proc::spawn(cmd, dir.join("prometheus.log")), addr)
}

fn start_alertmanager(dir: &Path, config: &Path) -> (Proc, String) {
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let mut cmd = tool("prometheus-alertmanager");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address={addr}"))
        // No HA gossip: it would bind 9094 and collide across parallel runs.
        .arg("--cluster.listen-address=")
        .current_dir(dir);
    (Proc::spawn(cmd, dir.join("alertmanager.log")), addr)
}

/// A `gekko up` in its own working directory, with free ports, MCP over HTTP off unless
/// `mcp_port` is given; returns the command, the HTTP address and the gRPC port.
fn gekko_up(dir: &Path, redis: &RedisServer, mcp_port: Option<u16>) -> (Command, String, u16) {
    let http = free_port().unwrap();
    let grpc = free_port().unwrap();
    let mut cmd = common::gekko(&["up"]);
    cmd.current_dir(dir)
        .env("REDIS_URL", redis.url())
        .env(
            "MONITORING_CONFIGURATIONS",
            common::monitoring(http, grpc, "json"),
        )
        .env(
            "MCP_SETTINGS",
            mcp_port.map_or_else(
                || "http_addr=off".to_owned(),
                |p| format!("http_addr=127.0.0.1:{p}"),
            ),
        );
    (cmd, format!("127.0.0.1:{http}"), grpc)
}

/// Points `gekko up`'s Binance.US venue at a simulator the test owns (its paper key);
/// the other venues stay gekko's in-process simulators.
fn on_sim(cmd: &mut Command, sim: &gekko_sim::binanceus::SimHandle) {
    cmd.env("BINANCEUS_API_KEY", "paper-key")
        .env("BINANCEUS_API_SECRET", "paper-secret")
        .env(
            "TRADING_API_ENDPOINTS",
            format!("binanceus={},binanceus.stream={}", sim.rest_url, sim.ws_url),
        );
}

/// Points `gekko up`'s `analyst` LLM role at two simulators: OpenRouter first, a LiteLLM
/// proxy second.
fn on_llm_sims(cmd: &mut Command, primary: &LlmSim, secondary: &LlmSim) {
    cmd.env("OPENROUTER_API_KEY", LLM_KEY)
        .env(
            "OPENROUTER_BASE_URL",
            format!("{}/api/v1", primary.base_url()),
        )
        .env("LITELLM_API_KEY", LLM_KEY)
        .env("LITELLM_BASE_URL", secondary.base_url())
        .env(
            "LLM_MODELS",
            "analyst=openrouter:openai/gpt-4o-mini|litellm:openai/gpt-4o-mini",
        );
}

/// One completion through gekko's gRPC `LlmService`, then one that fails over: the
/// OpenRouter simulator answers 503 once. Returns when the live `/metrics` has the LLM
/// families (calls, tokens, cost, errors, failovers, provider health).
fn make_llm_events(rt: &tokio::runtime::Runtime, primary: &LlmSim, grpc: u16, addr: &str) {
    use gekko_proto::v1 as pb;
    use gekko_proto::v1::llm_service_client::LlmServiceClient;
    let ask = || pb::LlmCompleteRequest {
        role: "analyst".to_owned(),
        messages: vec![pb::LlmChatMessage {
            role: "user".to_owned(),
            content: "monitoring".to_owned(),
        }],
        max_tokens: 0,
    };
    rt.block_on(async {
        let mut client = LlmServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
            .await
            .expect("gRPC connects");
        client.complete(ask()).await.expect("a completion");
        primary.inject(LlmFault::Status {
            code: 503,
            retry_after_s: None,
            count: 1,
        });
        client
            .complete(ask())
            .await
            .expect("a completion after a failover");
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in [
        "gekko_llm_request_duration_seconds_count",
        "gekko_llm_tokens_total",
        "gekko_llm_cost_usd_total",
        "gekko_llm_errors_total",
        "gekko_llm_failovers_total",
        "gekko_llm_provider_up",
    ] {
        while !http_get(addr, "/metrics").is_some_and(|(_, b)| b.contains(name)) {
            assert!(Instant::now() < deadline, "{name} in /metrics within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Makes the events whose metric families only appear once they happen: an order
/// (`gekko_gateway_submit_seconds`), one the venue refuses (selling more BTC than the
/// account holds), one the pre-trade checks refuse (above `max_order_notional`), a 429
/// storm, a 418 ban and dropped websockets (`gekko_venue_ws_reconnects_total`). Returns
/// when the live `/metrics` has every one of them.
fn make_events(
    rt: &tokio::runtime::Runtime,
    sim: &gekko_sim::binanceus::SimHandle,
    grpc: u16,
    addr: &str,
) {
    use gekko_proto::v1 as pb;
    use gekko_sim::binanceus::Fault;
    let url = format!("http://127.0.0.1:{grpc}");
    let mut gw = rt
        .block_on(pb::gateway_service_client::GatewayServiceClient::connect(
            url,
        ))
        .expect("gRPC connect");
    let order = |seq: u64, side: pb::Side, qty: &str, price: &str| pb::PlaceOrderRequest {
        venue: "binanceus".into(),
        instrument: "BTC-USD".into(),
        side: side as i32,
        r#type: pb::OrderType::Limit as i32,
        qty: qty.into(),
        price: price.into(),
        strategy: "monitoring-test".into(),
        sequence: seq,
        ..Default::default()
    };
    let mut seq = 0;
    let mut place = |side, qty: &str, price: &str| {
        seq += 1;
        rt.block_on(gw.place_order(order(seq, side, qty, price)))
    };
    place(pb::Side::Buy, "0.01", "1000.00").expect("a resting limit buy is placed");
    // The account holds 2 BTC: the venue refuses a 3 BTC sell (90 000 USD, within the
    // compliance limit of 100 000).
    let _ = place(pb::Side::Sell, "3", "30000.00");
    // 120 000 USD is above COMPLIANCE_SETTINGS max_order_notional: refused before sending.
    assert!(
        place(pb::Side::Buy, "2", "60000.00").is_err(),
        "the pre-trade checks refuse it"
    );
    let mut account = || {
        rt.block_on(gw.get_account(pb::GetAccountRequest {
            venue: "binanceus".into(),
        }))
    };
    let has = |name: &str| http_get(addr, "/metrics").is_some_and(|(_, b)| b.contains(name));
    let deadline = Instant::now() + Duration::from_secs(30);
    let until = |what: &str, cond: &mut dyn FnMut() -> bool| {
        while !cond() {
            assert!(Instant::now() < deadline, "{what} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    sim.inject(Fault::RateLimitStorm {
        duration: Duration::from_secs(1),
    });
    until("a 429 in /metrics", &mut || {
        let _ = account();
        has("gekko_venue_http_429_total")
    });
    until("the account answers again after the storm", &mut || {
        account().is_ok()
    });
    sim.inject(Fault::Ban {
        duration: Duration::from_secs(1),
    });
    until("a 418 in /metrics", &mut || {
        let _ = account();
        has("gekko_venue_http_418_total")
    });
    sim.inject(Fault::DropWebSockets);
    until("a stream reconnect in /metrics", &mut || {
        has("gekko_venue_ws_reconnects_total")
    });
    until("the order families in /metrics", &mut || {
        has("gekko_gateway_submit_seconds_bucket")
            && has("gekko_gateway_venue_rejections_total")
            && has("gekko_gateway_pretrade_rejections_total")
    });
}

#[test]
fn prometheus_configs_pass_promtool_check_config() {
    let dir = root().join("deploy/prometheus");
    for f in ["prometheus.yml", "prometheus-local.yml"] {
        let out = run_ok(
            tool("promtool")
                .args(["check", "config", f])
                .current_dir(&dir),
            &format!("promtool check config {f}"),
        );
        assert!(out.contains("SUCCESS"), "{out}");
        assert!(
            out.contains("2 rule files found"),
            "{f} loads the rules:\n{out}"
        );
    }
    // The compose file finds every service, replicas included, by DNS A records.
    let text = read(&dir.join("prometheus.yml"));
    for svc in [
        "gateway-binanceus",
        "gateway-coinbase",
        "gateway-oanda",
        "inference",
        "mcp",
        "configd",
        "healthd",
    ] {
        assert!(
            text.contains(&format!("- names: [\"{svc}\"]\n        type: A\n")),
            "{svc} is not scraped through a dns_sd_configs A lookup"
        );
    }
}

#[test]
fn rules_pass_promtool_and_every_alert_has_unit_tests() {
    let files = rule_files();
    let out = run_ok(
        tool("promtool").arg("check").arg("rules").args(&files),
        "promtool check rules",
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let dir = root().join("deploy/prometheus");
    let out = run_ok(
        tool("promtool")
            .args(["test", "rules", "tests/alerts_test.yml"])
            .current_dir(&dir),
        "promtool test rules",
    );
    assert!(out.contains("SUCCESS"), "{out}");

    // Every alert has a case where it fires and one where it stays silent.
    let tests = read(&dir.join("tests/alerts_test.yml"));
    let (mut fires, mut silent) = (BTreeSet::new(), BTreeSet::new());
    let mut current = String::new();
    for line in tests.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname: ") {
            name.clone_into(&mut current);
        } else if line == "exp_alerts: []" {
            silent.insert(current.clone());
        } else if line == "exp_alerts:" {
            fires.insert(current.clone());
        }
    }
    let alerts: Vec<String> = rules()
        .into_iter()
        .filter(|(_, kind, _)| kind == "alert")
        .map(|(name, _, _)| name)
        .collect();
    for required in [
        "GekkoServiceDown",
        "GekkoVenueDisconnected",
        "GekkoMarketDataStale",
        "GekkoClockOffsetHigh",
        "GekkoCircuitOpen",
        "GekkoVenueBanned",
        "GekkoReconciliationDifferences",
        "GekkoOrderLatencyBudgetBurn",
        "GekkoRejectRateBudgetBurn",
        "GekkoLlmFailovers",
        "GekkoLlmCostHigh",
        "GekkoMcpRefusalsSpike",
    ] {
        assert!(alerts.iter().any(|a| a == required), "no alert {required}");
    }
    for a in &alerts {
        assert!(fires.contains(a), "{a}: no promtool case where it fires");
        assert!(
            silent.contains(a),
            "{a}: no promtool case where it stays silent"
        );
    }

    // The unit tests bite: a disconnect alert that looks at the wrong value fails them.
    let tmp = scratch("mutant");
    std::fs::create_dir_all(tmp.join("rules")).unwrap();
    std::fs::create_dir_all(tmp.join("tests")).unwrap();
    for f in &files {
        let text = read(f).replace(
            "expr: gekko_venue_ws_connected == 0",
            "expr: gekko_venue_ws_connected == 1",
        );
        std::fs::write(tmp.join("rules").join(f.file_name().unwrap()), text).unwrap();
    }
    std::fs::write(tmp.join("tests/alerts_test.yml"), &tests).unwrap();
    let (code, stdout, stderr) = run(
        tool("promtool")
            .args(["test", "rules", "tests/alerts_test.yml"])
            .current_dir(&tmp),
        "promtool test rules on a broken alert",
    );
    assert_ne!(code, 0, "a broken alert passed the unit tests:\n{stdout}");
    assert!(
        format!("{stdout}{stderr}").contains("GekkoVenueDisconnected"),
        "{stdout}\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn alertmanager_config_passes_amtool_and_routes_to_both_webhooks() {
    let dir = root().join("deploy/alertmanager");
    let out = run_ok(
        tool("amtool")
            .args(["check-config", "alertmanager.yml"])
            .current_dir(&dir),
        "amtool check-config",
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let route = |labels: &[&str]| {
        run_ok(
            tool("amtool")
                .args(["config", "routes", "test", "--config.file=alertmanager.yml"])
                .args(labels)
                .current_dir(&dir),
            "amtool config routes test",
        )
        .trim()
        .to_owned()
    };
    assert_eq!(
        route(&["alertname=GekkoVenueDisconnected", "severity=critical"]),
        "healthd,generic-webhook"
    );
    assert_eq!(
        route(&["alertname=GekkoClockOffsetHigh", "severity=warning"]),
        "healthd"
    );
    // The healthd URL is written in one place.
    let text = read(&dir.join("alertmanager.yml"));
    assert_eq!(text.matches("http://healthd:9500/alerts").count(), 1);
    // The generic webhook is off by default: a receiver without webhook_configs (nothing
    // in compose answers a made-up host, so a URL there would fail every delivery).
    let (_, generic) = text
        .split_once("  - name: generic-webhook\n")
        .expect("a generic-webhook receiver");
    let live: Vec<&str> = generic
        .lines()
        .take_while(|l| !l.starts_with("  - name:"))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    assert!(live.is_empty(), "generic-webhook is not off: {live:?}");
    // Its documented block, uncommented, is a valid config (the live test below delivers
    // through it).
    let scratch = scratch("alertmanager-generic");
    std::fs::write(
        scratch.join("alertmanager.yml"),
        with_generic_webhook(&text, GENERIC_EXAMPLE_URL),
    )
    .unwrap();
    let out = run_ok(
        tool("amtool")
            .args(["check-config", "alertmanager.yml"])
            .current_dir(&scratch),
        "amtool check-config (generic webhook on)",
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn dashboards_parse_with_the_grafana_sdk_and_their_promql_passes_promtool() {
    let files = dashboard_files();
    let (code, json, stderr) = lift_dashboards(&files);
    assert_eq!(code, 0, "dashboards.py found problems:\n{stderr}");
    let exprs = dashboard_exprs(&json);
    let uids: BTreeSet<&str> = exprs.iter().map(|(u, _, _)| u.as_str()).collect();
    assert_eq!(
        uids,
        BTreeSet::from([
            "gekko-inference",
            "gekko-llm-mcp",
            "gekko-system",
            "gekko-venues"
        ])
    );

    // The provisioned data source is the one every panel names (dashboards.py checks
    // the panels' uid), and the provider reads the folder the dashboards are mounted at.
    let grafana = root().join("deploy/grafana/provisioning");
    let ds = read(&grafana.join("datasources/prometheus.yml"));
    assert!(
        ds.contains("uid: prometheus") && ds.contains("url: http://prometheus:9090"),
        "{ds}"
    );
    let provider = read(&grafana.join("dashboards/gekko.yml"));
    assert!(
        provider.contains("path: /var/lib/grafana/dashboards\n"),
        "{provider}"
    );

    let tmp = scratch("lifted");
    let file = tmp.join("lifted.yml");
    std::fs::write(&file, lifted_rules_file(&exprs)).unwrap();
    let out = run_ok(
        tool("promtool").args(["check", "rules"]).arg(&file),
        "promtool check rules on the dashboards' PromQL",
    );
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{out}"
    );

    // Each dashboard shows what the issue asks of it.
    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (uid, _, e) in &exprs {
        used.entry(uid).or_default().extend(metric_names(e));
    }
    let wants: &[(&str, &[&str])] = &[
        (
            "gekko-system",
            &[
                "up",
                "gekko_ready",
                "gekko_component_ready",
                "gekko_bus_appended_total",
                "gekko_bus_ready",
                "gekko_bus_reconnects_total",
            ],
        ),
        (
            "gekko-venues",
            &[
                "gekko_venue_ws_connected",
                "gekko_venue_request_weight_used",
                "gekko_venue_http_429_total",
                "gekko_venue_http_418_total",
                "gekko_gateway_clock_offset_ms",
                "gekko_venue_stream_staleness_seconds",
                "gekko_venue_ws_reconnects_total",
                "gekko_venue_circuit_state",
                "gekko_gateway_submit_seconds_bucket",
                "gekko_gateway_inflight_orders",
                "gekko_gateway_venue_rejections_total",
            ],
        ),
        (
            "gekko-inference",
            &[
                "gekko_inference_predictions_total",
                "gekko_inference_batch_size",
                "gekko_inference_latency_seconds_bucket",
                "gekko_inference_device_memory_bytes",
            ],
        ),
        (
            "gekko-llm-mcp",
            &[
                "gekko_llm_request_duration_seconds_count",
                "gekko_llm_failovers_total",
                "gekko_llm_cost_usd_total",
                "gekko_mcp_tool_calls_total",
                "gekko_mcp_refusals_total",
            ],
        ),
    ];
    for (uid, names) in wants {
        for n in *names {
            assert!(used[uid].contains(*n), "dashboard {uid} does not show {n}");
        }
    }
    assert!(
        exprs
            .iter()
            .any(|(u, _, e)| u == "gekko-system" && e.contains("resets(")),
        "the system dashboard shows no restarts"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_dashboard_checks_fail_on_broken_dashboards() {
    let tmp = scratch("broken");
    let src = root().join("deploy/grafana/dashboards/venues.json");
    let mut d: Value = serde_json::from_str(&read(&src)).unwrap();
    d["panels"][0]["targets"][0]["expr"] = Value::from("");
    d["panels"][1]["datasource"]["uid"] = Value::from("somewhere-else");
    let broken = tmp.join("venues.json");
    std::fs::write(&broken, serde_json::to_string(&d).unwrap()).unwrap();
    let (code, _, stderr) = lift_dashboards(&[broken]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("has no expression"), "{stderr}");
    assert!(stderr.contains("data source is not uid"), "{stderr}");

    // A panel query that is not PromQL fails promtool.
    let file = tmp.join("lifted.yml");
    let bad = vec![(
        "gekko-venues".to_owned(),
        "p".to_owned(),
        "sum(rate(gekko_venue_requests_total[5m])".to_owned(),
    )];
    std::fs::write(&file, lifted_rules_file(&bad)).unwrap();
    let (code, out, err) = run(
        tool("promtool").args(["check", "rules"]).arg(&file),
        "promtool check rules on bad PromQL",
    );
    assert_ne!(code, 0, "bad PromQL passed:\n{out}\n{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn metric_names_are_lifted_from_promql() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (venue, le) (rate(gekko_gateway_submit_seconds_bucket{le="1", venue=~"bin.*"}[5m])))"#
        ),
        ["gekko_gateway_submit_seconds_bucket"]
    );
    assert_eq!(
        metric_names(
            "a_total / on (instance, venue) group_left b_budget and venue:x:ratio_rate5m > bool 0.1"
        ),
        ["a_total", "b_budget", "venue:x:ratio_rate5m"]
    );
    assert_eq!(metric_names("sum(up) without (job)"), ["up"]);
}

#[test]
fn live_metrics_export_every_name_the_rules_and_dashboards_use_and_pass_the_lint() {
    let redis = RedisServer::start();
    let dir = scratch("live-metrics");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(SimBinanceUs::start(SimConfig::default()))
        .expect("start the Binance.US simulator");
    let primary = rt.block_on(LlmSim::start(LlmSimConfig::default())).unwrap();
    let secondary = rt.block_on(LlmSim::start(LlmSimConfig::default())).unwrap();
    let (mut cmd, addr, grpc) = gekko_up(&dir, &redis, Some(free_port().unwrap()));
    on_sim(&mut cmd, &sim);
    on_llm_sims(&mut cmd, &primary, &secondary);
    let mut gekko = Proc::spawn(cmd, dir.join("gekko.log"));
    let took = wait_http_ok(&mut gekko, "gekko up", &addr, "/readyz");
    println!("gekko up ready in {} ms", took.as_millis());
    let events = Instant::now();
    make_events(&rt, &sim, grpc, &addr);
    make_llm_events(&rt, &primary, grpc, &addr);
    println!("events made in {} ms", events.elapsed().as_millis());
    // Inference writes its families with its first batch: wait for it rather than
    // allow-list them.
    let started = Instant::now();
    let metrics = loop {
        if let Some((200, body)) = http_get(&addr, "/metrics")
            && body.contains("gekko_inference_predictions_total")
        {
            break body;
        }
        gekko.assert_running("gekko up");
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no inference predictions in /metrics within 90 s:\n{}",
            gekko.output()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    println!(
        "first prediction in /metrics after {} ms",
        started.elapsed().as_millis()
    );
    // configd and healthd are no part of `gekko up`: their own binaries, on the same Redis.
    let mut live = lint_metrics("gekko up", &metrics);
    for (what, body) in service_metrics(&dir, &redis) {
        live.extend(lint_metrics(what, &body));
    }

    // Every name a rule or a panel uses.
    let rules = rules();

    let records: BTreeSet<&str> = rules
        .iter()
        .filter(|(_, kind, _)| kind == "record")
        .map(|(n, _, _)| n.as_str())
        .collect();
    let (code, json, stderr) = lift_dashboards(&dashboard_files());
    assert_eq!(code, 0, "{stderr}");
    let mut used: BTreeMap<String, String> = BTreeMap::new();
    for (name, _, expr) in &rules {
        for m in metric_names(expr) {
            used.entry(m).or_insert_with(|| format!("rule {name}"));
        }
    }
    for (uid, title, expr) in dashboard_exprs(&json) {
        for m in metric_names(&expr) {
            used.entry(m)
                .or_insert_with(|| format!("dashboard {uid} panel {title:?}"));
        }
    }
    let event_only: BTreeMap<String, String> =
        table(&root().join("services/gekko/tests/monitoring/event-only-metrics.txt"))
            .into_iter()
            .map(|row| (row[0].clone(), row.get(1).cloned().unwrap_or_default()))
            .collect();
    let family = |n: &str| {
        ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| n.strip_suffix(s))
            .unwrap_or(n)
            .to_owned()
    };
    let mut problems = Vec::new();
    for (name, place) in &used {
        if name.contains(':') {
            if !records.contains(name.as_str()) {
                problems.push(format!("{place}: {name} is no recording rule"));
            }
        } else if name == "up" {
            // Written by Prometheus for every target.
        } else if !name.starts_with("gekko_") {
            problems.push(format!("{place}: {name} is not a gekko metric"));
        } else if !live.contains(name) && !event_only.contains_key(&family(name)) {
            problems.push(format!(
                "{place}: {name} is not in the live /metrics nor in event-only-metrics.txt"
            ));
        }
    }
    // The allow-list stays honest: used, written by gekko's sources, and with a reason.
    let sources = source_text();
    for (name, reason) in &event_only {
        if reason.is_empty() {
            problems.push(format!("event-only-metrics.txt: {name} has no reason"));
        }
        if !used.keys().any(|u| family(u) == *name) {
            problems.push(format!(
                "event-only-metrics.txt: {name} is used by no rule or panel"
            ));
        }
        if !sources.contains(&format!("\"{name}\"")) {
            problems.push(format!(
                "event-only-metrics.txt: {name} is written by no crates/*/src or services/*/src file"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    println!(
        "{} metric names used, {} live samples, {} event-only families",
        used.len(),
        live.len(),
        event_only.len()
    );
}

/// The binary `name` of another workspace package, next to `gekko`'s (cargo puts every
/// package's binaries in one directory). `cargo test --workspace` builds it first; a
/// binary missing or older than its package's sources fails with how to build it.
fn sibling_bin(name: &str) -> PathBuf {
    let bin = Path::new(common::BIN).with_file_name(name);
    let build = format!("run `cargo build -p {name}` (or `cargo test --workspace`) first");
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{} is missing ({e}): {build}", bin.display()));
    fn newest(dir: &Path, out: &mut std::time::SystemTime) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                newest(&p, out);
            } else if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                *out = (*out).max(t);
            }
        }
    }
    let mut sources = std::time::UNIX_EPOCH;
    newest(
        &root().join("services").join(name).join("src"),
        &mut sources,
    );
    assert!(
        built >= sources,
        "{} is older than services/{name}/src: {build}",
        bin.display()
    );
    bin
}

/// The live `/metrics` of the `configd` and `healthd` binaries (paper defaults, the same
/// Redis; healthd polls Redis and the host, Docker off), each once its first poll or
/// config version is in it.
fn service_metrics(dir: &Path, redis: &RedisServer) -> Vec<(&'static str, String)> {
    let env_file = dir.join("configd.env");
    std::fs::write(&env_file, "# paper defaults\n").unwrap();
    let mut out = Vec::new();
    for (name, wait_for) in [
        ("configd", "gekko_config_version"),
        ("healthd", "gekko_healthd_redis_up"),
    ] {
        let http = free_port().unwrap();
        let grpc = free_port().unwrap();
        let mut cmd = Command::new(sibling_bin(name));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("REDIS_URL", redis.url())
            .env(
                "MONITORING_CONFIGURATIONS",
                format!("http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{grpc}"),
            )
            .env("AUDIT_LOGGING_SETTINGS", "enabled=false")
            .env("CONFIGD_ENV_FILE", &env_file)
            .env(
                "HEALTHD_HTTP_ADDR",
                format!("127.0.0.1:{}", free_port().unwrap()),
            )
            .env("HEALTHD_INTERVAL_MS", "200")
            .env("HEALTHD_DOCKER", "off")
            .current_dir(dir);
        let mut proc = Proc::spawn(cmd, dir.join(format!("{name}.log")));
        let addr = format!("127.0.0.1:{http}");
        wait_http_ok(&mut proc, name, &addr, "/readyz");
        let started = Instant::now();
        let body = loop {
            if let Some((200, body)) = http_get(&addr, "/metrics")
                && body.contains(wait_for)
            {
                break body;
            }
            proc.assert_running(name);
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no {wait_for} in {name}'s /metrics within 30 s:\n{}",
                proc.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        println!(
            "{name}: /metrics read after {} ms",
            started.elapsed().as_millis()
        );
        out.push((name, body));
    }
    out
}

/// Runs `promtool check metrics` on one service's `/metrics`: nothing beyond
/// metrics-lint-allow.txt may be found. Returns the sample names.
fn lint_metrics(what: &str, body: &str) -> BTreeSet<String> {
    // The body may come chunked: keep only exposition lines.
    let metrics: String = body
        .lines()
        .filter(|l| l.starts_with('#') || l.starts_with("gekko_"))
        .map(|l| format!("{l}\n"))
        .collect();
    let live: BTreeSet<String> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    assert!(!live.is_empty(), "{what}'s /metrics has no gekko_ sample");

    // promtool check metrics: 0 clean, 3 lint findings, anything else a parse error.
    let mut lint = tool("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        code == 0 || code == 3,
        "promtool check metrics could not parse {what}'s /metrics ({code}):\n{findings}"
    );
    let allowed = table(&root().join("services/gekko/tests/monitoring/metrics-lint-allow.txt"));
    let unexpected: Vec<&str> = findings
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            let (name, finding) = l.split_once(' ').unwrap_or((l, ""));
            !allowed
                .iter()
                .any(|row| (row[0] == "*" || row[0] == name) && row[1] == finding)
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "promtool check metrics findings on {what}'s /metrics not in metrics-lint-allow.txt:\n{}",
        unexpected.join("\n")
    );
    live
}

/// Every `src/**/*.rs` file under `crates/` and `services/`, concatenated.
fn source_text() -> String {
    fn walk(dir: &Path, in_src: bool, out: &mut String) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            if p.is_dir() {
                if name != "target" && name != "tests" {
                    walk(&p, in_src || name == "src", out);
                }
            } else if in_src && p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    let mut out = String::new();
    for top in ["crates", "services"] {
        walk(&root().join(top), false, &mut out);
    }
    out
}

#[test]
fn live_venue_disconnect_alert_reaches_the_webhook() {
    let redis = RedisServer::start();
    let dir = scratch("live-alert");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(SimBinanceUs::start(SimConfig::default()))
        .expect("start the Binance.US simulator");

    let (hook_port, hooks) = webhook();
    let am_config = live_alertmanager_config(&dir, hook_port);
    let (mut am, am_addr) = start_alertmanager(&dir, &am_config);

    // Binance.US is the simulator this test owns (its paper key), the other venues are
    // gekko's in-process simulators.
    let (mut cmd, gekko_addr, _) = gekko_up(&dir, &redis, None);
    on_sim(&mut cmd, &sim);
    let mut gekko = Proc::spawn(cmd, dir.join("gekko.log"));
    // Ready means every stream is connected: only then does Prometheus start, so no
    // scrape can catch a stream that has not connected yet.
    wait_http_ok(&mut gekko, "gekko up", &gekko_addr, "/readyz");

    let prom_config = live_prometheus_config(&dir, &gekko_addr, &am_addr);
    let (mut prom, prom_addr) = start_prometheus(&dir, &prom_config);
    let prom_ready = wait_http_ok(&mut prom, "prometheus", &prom_addr, "/-/ready");
    let am_ready = wait_http_ok(&mut am, "alertmanager", &am_addr, "/-/ready");
    println!(
        "prometheus ready in {} ms, alertmanager in {} ms",
        prom_ready.as_millis(),
        am_ready.as_millis()
    );

    // Prometheus scrapes both Binance.US streams connected.
    let connected = r#"gekko_venue_ws_connected{venue="binanceus"} == 1"#;
    let started = Instant::now();
    while prom_query(&prom_addr, connected).len() < 2 {
        gekko.assert_running("gekko up");
        prom.assert_running("prometheus");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "Prometheus never saw both Binance.US streams connected:\n{}",
            prom.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let before: Vec<(String, String)> = hooks.try_iter().collect();
    assert!(
        !before
            .iter()
            .any(|(_, b)| firing(b).iter().any(|(a, _)| a == "GekkoVenueDisconnected")),
        "a disconnect alert fired while connected: {before:?}"
    );

    // Kill the simulator: its streams and REST API go away.
    let killed = Instant::now();
    rt.block_on(sim.shutdown());

    let mut got: BTreeSet<String> = BTreeSet::new();
    while got.len() < 2 {
        let left = Duration::from_secs(60).saturating_sub(killed.elapsed());
        assert!(
            !left.is_zero(),
            "the disconnect alert reached {got:?} of /healthd and /generic within 60 s\n\
             prometheus:\n{}\nalertmanager:\n{}",
            prom.output(),
            am.output()
        );
        let Ok((path, body)) = hooks.recv_timeout(left.min(Duration::from_secs(1))) else {
            gekko.assert_running("gekko up");
            continue;
        };
        if firing(&body)
            .iter()
            .any(|(a, v)| a == "GekkoVenueDisconnected" && v == "binanceus")
        {
            println!(
                "GekkoVenueDisconnected at {path} {} ms after the simulator stopped",
                killed.elapsed().as_millis()
            );
            got.insert(path);
        }
    }
    assert_eq!(
        got,
        BTreeSet::from(["/generic".to_owned(), "/healthd".to_owned()])
    );
    drop(prom);
    drop(am);
    drop(gekko);
    let _ = std::fs::remove_dir_all(&dir);
}
