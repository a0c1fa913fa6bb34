//! Shared by the MCP end-to-end tests: one real `redis-server` and one `gekko up` in paper
//! mode per test binary (both under `gekko_testkit::reaped`, so they stop with the test
//! binary), the official MCP Python SDK driving gekko's MCP server (`drive.py`), and the
//! evidence a test checks: the venue's order requests (`gekko_venue_requests_total` for
//! the simulator's order endpoints on `/metrics`), the order stream on the bus, the audit
//! stream, and `GetOrder` over gRPC.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use gekko_testkit::{free_port, reaped};
use serde_json::{Value, json};

/// The trader token (role trader, name `mcp-bot`).
pub const TRADER: &str = "mcp-trader-token-0123456789abcdef";
/// The viewer token (role viewer, name `mcp-watcher`).
pub const VIEWER: &str = "mcp-viewer-token-0123456789abcdef";

/// The Python interpreter of the SDK venv, or a failure saying how to make it.
pub fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-sdk/bin/python");
    assert!(
        p.exists(),
        "{} is missing: the MCP tests need the official MCP SDK (mcp==2.3.0); create the venv with \
         `scripts/test.sh`, or: python3 -m venv .venv-sdk && .venv-sdk/bin/pip install -r scripts/sdk-requirements.txt",
        p.display()
    );
    p
}

fn driver() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/drive.py")
}

/// A `redis-server` and a `gekko up`, alive until the test binary exits.
pub struct Shared {
    redis_port: u16,
    pub http: u16,
    pub grpc: u16,
    pub mcp: u16,
    _redis: Child,
    _gekko: Child,
    /// Tests of a file run one at a time: each proves "nothing was sent" from counters
    /// another test could move.
    serial: Mutex<()>,
}

impl Shared {
    /// Starts both with `mcp_settings` (a trader and a viewer token configured).
    pub fn start(mcp_settings: impl Fn(u16) -> String) -> Self {
        let redis_port = free_port().unwrap();
        let mut redis =
            Command::new(std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()));
        redis.args([
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]);
        let redis_child = reaped(&redis)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); install it with `apt-get install redis-server` or scripts/test.sh")
            });
        let url = format!("redis://127.0.0.1:{redis_port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }

        let (http, grpc, mcp) = (
            free_port().unwrap(),
            free_port().unwrap(),
            free_port().unwrap(),
        );
        let dir = std::env::temp_dir().join(format!("gekko-mcp-test-{}-{mcp}", std::process::id()));
        let tokens = format!(
            "tokens=mcp-bot:trader:{};mcp-watcher:viewer:{}",
            gekko_security::sha256_hex(TRADER),
            gekko_security::sha256_hex(VIEWER)
        );
        let mut cmd = super::common::gekko(&["up"]);
        cmd.env(
            "MONITORING_CONFIGURATIONS",
            super::common::monitoring(http, grpc, "json"),
        )
        .env("REDIS_URL", &url)
        .env("ACCESS_CONTROL_CONFIG", tokens)
        .env("MCP_SETTINGS", mcp_settings(mcp))
        .env(
            "CONTROLLER_SETTINGS",
            format!("reports_dir={}", dir.join("reports").display()),
        )
        .env(
            "AUDIT_LOGGING_SETTINGS",
            format!("archive_dir={}", dir.join("audit").display()),
        );
        // `reaped` copies the variables set on `cmd` but not its env_clear: clear again.
        let mut wrapped = reaped(&cmd);
        wrapped.env_clear();
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                wrapped.env(k, v);
            }
        }
        let mut gekko = wrapped
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gekko up");
        let (tx, rx) = mpsc::channel::<String>();
        for pipe in [
            Box::new(gekko.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(gekko.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        let needle = format!("gekko up: mcp=http://127.0.0.1:{mcp}/mcp");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(&needle) => break,
                Ok(l) => seen.push(l),
                Err(_) => panic!(
                    "gekko up never printed {needle:?}; output:\n{}",
                    seen.join("\n")
                ),
            }
        }
        // Keep draining its output so the pipes never fill.
        std::thread::spawn(move || for _ in rx {});
        super::common::wait_ready(&format!("127.0.0.1:{http}"));
        let shared = Self {
            redis_port,
            http,
            grpc,
            mcp,
            _redis: redis_child,
            _gekko: gekko,
            serial: Mutex::new(()),
        };
        shared.wait_for_quotes();
        shared
    }

    /// One test at a time.
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.serial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.mcp)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }

    /// Waits until the Binance.US gateway has a BTC-USD quote (market orders are valued at
    /// it).
    fn wait_for_quotes(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = rt().block_on(async {
                let ch = tonic::transport::Endpoint::from_shared(self.grpc_url())
                    .unwrap()
                    .connect()
                    .await
                    .ok()?;
                let mut c = gekko_proto::v1::gateway_service_client::GatewayServiceClient::new(ch);
                let mut r = tonic::Request::new(gekko_proto::v1::GetQuoteRequest {
                    instrument: "BTC-USD".into(),
                    venue: "binanceus".into(),
                });
                r.metadata_mut()
                    .insert("authorization", format!("Bearer {VIEWER}").parse().unwrap());
                c.get_quote(r).await.ok()
            });
            if got.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no BTC-USD quote on binanceus within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        let (code, body) = super::common::http_get(&format!("127.0.0.1:{}", self.http), "/metrics")
            .expect("/metrics answers");
        assert_eq!(code, 200);
        body
    }

    /// Order requests the gateways sent to the Binance.US simulator so far (every
    /// `order*` endpoint, every outcome), from `/metrics`.
    pub fn venue_order_requests(&self) -> u64 {
        let (code, body) = super::common::http_get(&format!("127.0.0.1:{}", self.http), "/metrics")
            .expect("/metrics answers");
        assert_eq!(code, 200);
        body.lines()
            .filter(|l| l.starts_with("gekko_venue_requests_total{"))
            .filter(|l| l.contains("venue=\"binanceus\"") && l.contains("endpoint=\"order"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }

    fn redis(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}", self.redis_port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The payloads of a stream, as text.
    pub fn stream(&self, name: &str) -> Vec<String> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(name)
            .arg("-")
            .arg("+")
            .query(&mut self.redis())
            .unwrap();
        reply
            .ids
            .into_iter()
            .flat_map(|e| e.map.into_values())
            .filter_map(|v| match v {
                redis::Value::BulkString(b) => String::from_utf8(b).ok(),
                _ => None,
            })
            .collect()
    }

    /// `mcp.tool_call` audit records naming `tool`, as text.
    pub fn audit_tool_calls(&self, tool: &str) -> Vec<String> {
        self.stream("gekko:audit")
            .into_iter()
            .filter(|p| p.contains("mcp.tool_call") && p.contains(&format!("\"tool\":\"{tool}\"")))
            .collect()
    }

    /// `GetOrder` over gRPC with the trader token.
    pub fn grpc_get_order(
        &self,
        instrument: &str,
        client_order_id: &str,
    ) -> gekko_proto::v1::OrderMsg {
        rt().block_on(async {
            let ch = tonic::transport::Endpoint::from_shared(self.grpc_url())
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut c = gekko_proto::v1::gateway_service_client::GatewayServiceClient::new(ch);
            let mut r = tonic::Request::new(gekko_proto::v1::GetOrderRequest {
                instrument: instrument.into(),
                client_order_id: client_order_id.into(),
                venue: "binanceus".into(),
            });
            r.metadata_mut()
                .insert("authorization", format!("Bearer {TRADER}").parse().unwrap());
            c.get_order(r).await.unwrap().into_inner().order.unwrap()
        })
    }

    /// `InferenceService/LatestSignals` over gRPC with the viewer token.
    pub fn grpc_latest_signals(&self) -> Vec<gekko_proto::v1::SignalMsg> {
        rt().block_on(async {
            let ch = tonic::transport::Endpoint::from_shared(self.grpc_url())
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut c = gekko_proto::v1::inference_service_client::InferenceServiceClient::new(ch);
            let mut r = tonic::Request::new(gekko_proto::v1::LatestSignalsRequest::default());
            r.metadata_mut()
                .insert("authorization", format!("Bearer {VIEWER}").parse().unwrap());
            c.latest_signals(r).await.unwrap().into_inner().signals
        })
    }

    /// A raw POST to `/mcp` with `authorization` (or none): the HTTP status and body.
    pub fn raw_post(&self, authorization: Option<&str>) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.mcp)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let body = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}})
        .to_string();
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.mcp,
            body.len()
        )
        .unwrap();
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        let code = buf
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, buf)
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A step for `drive.py`.
pub fn call(tool: &str, args: Value) -> Value {
    json!({"op": "call", "tool": tool, "args": args})
}

/// `place_order` arguments: a market buy of `qty` BTC-USD on binanceus.
pub fn market_buy(qty: &str) -> Value {
    json!({"venue": "binanceus", "instrument": "BTC-USD", "side": "buy", "type": "market", "qty": qty})
}

pub fn list_tools() -> Value {
    json!({"op": "list_tools"})
}

fn run_driver(args: &[String], env: &[(&str, String)]) -> Vec<Value> {
    let mut cmd = Command::new(python());
    cmd.arg(driver()).args(args).env_remove("MCP_SETTINGS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run drive.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        !lines.is_empty(),
        "drive.py printed nothing (exit {:?}); stderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    lines
}

/// Runs `steps` over streamable HTTP; the first value is the connect line.
pub fn http(url: &str, token: Option<&str>, mode: &str, steps: &[Value]) -> Vec<Value> {
    run_driver(
        &[
            "http".into(),
            url.into(),
            token.unwrap_or("-").into(),
            mode.into(),
            Value::from(steps.to_vec()).to_string(),
        ],
        &[],
    )
}

/// Runs `steps` over stdio: the SDK starts `gekko mcp --grpc GRPC --token TOKEN` with
/// `MCP_SETTINGS=mcp_settings`.
pub fn stdio(
    grpc: &str,
    token: Option<&str>,
    mcp_settings: &str,
    mode: &str,
    steps: &[Value],
) -> Vec<Value> {
    run_driver(
        &[
            "stdio".into(),
            super::common::BIN.into(),
            grpc.into(),
            token.unwrap_or("-").into(),
            mode.into(),
            Value::from(steps.to_vec()).to_string(),
        ],
        &[("MCP_SETTINGS", mcp_settings.to_owned())],
    )
}

/// Asserts the connect line says connected, and returns the step results.
pub fn connected(lines: Vec<Value>) -> Vec<Value> {
    assert_eq!(lines[0]["connected"], json!(true), "{lines:?}");
    lines[1..].to_vec()
}

/// Asserts a step was refused as a tool error whose text names `needle`.
pub fn assert_refused(step: &Value, rule: &str, needle: &str) {
    assert_eq!(step["is_error"], json!(true), "{step}");
    assert_eq!(step["structured"]["rule"], json!(rule), "{step}");
    let text = step["text"].as_str().unwrap_or_default();
    assert!(text.contains(needle), "{needle:?} not in {text:?}");
}
