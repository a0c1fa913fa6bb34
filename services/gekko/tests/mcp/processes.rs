//! Real processes the MCP-client and LLM end-to-end tests start next to `gekko`: the
//! small MCP tool server of `crates/mcp-client/tests/servers` (official Python SDK) over
//! streamable HTTP, and the `sim-llm` binary. Both run under `gekko_testkit::reaped`, so
//! neither outlives the test binary, and both can be SIGKILLed mid-test.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A script of `crates/mcp-client/tests/servers` (`tool_server.py`, `silent_stdio.py`).
pub fn mcp_test_server(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/mcp-client/tests/servers")
        .join(name)
}

/// The `sim-llm` binary next to `gekko` in the target directory. `cargo test --workspace`
/// (scripts/test.sh) builds it; a lone `cargo test -p gekko` does not.
pub fn sim_llm_bin() -> PathBuf {
    let bin = Path::new(super::common::BIN).with_file_name("sim-llm");
    assert!(
        bin.exists(),
        "{} is missing: these tests run the real sim-llm process; build it with \
         `cargo build -p sim-llm` (scripts/test.sh builds the whole workspace)",
        bin.display()
    );
    bin
}

/// The id of the process the `reaped` wrapper `wrapper` runs (its child whose executable
/// is named `exe`), found in /proc.
fn reaped_child(wrapper: u32, exe: &str) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces, so split after the last `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(wrapper) {
            continue;
        }
        let named = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .is_some_and(|n| n.starts_with(exe));
        if named {
            return Some(pid);
        }
    }
    None
}

/// SIGKILL to one process id, through the shell builtin.
fn kill_9(pid: u32) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -KILL {pid}")])
        .status()
        .expect("sh runs");
    assert!(status.success(), "kill -KILL {pid} failed");
}

/// Waits for a reaped wrapper to exit after its process was killed.
fn wait_gone(wrapper: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while wrapper.try_wait().ok().flatten().is_none() {
        assert!(
            Instant::now() < deadline,
            "{what} did not exit within 10 s of SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `sim-llm` process.
pub struct SimLlm {
    wrapper: Child,
    /// `http://127.0.0.1:PORT`, as it printed.
    pub base: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl SimLlm {
    /// Starts `sim-llm --addr ADDR` (port 0 for a free one) and waits for its base URL.
    pub fn start(addr: &str) -> Self {
        let mut cmd = Command::new(sim_llm_bin());
        cmd.args(["--addr", addr]).env("RUST_LOG", "warn");
        let mut wrapper = gekko_testkit::reaped(&cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sim-llm starts");
        let stdout = wrapper.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep reading so the pipe never fills.
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("sim-llm --addr {addr} printed no base URL within 20 s"));
        let base = line.trim().to_owned();
        let addr = base
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("sim-llm printed {line:?}, not a base URL"))
            .to_owned();
        Self {
            wrapper,
            base,
            addr,
        }
    }

    /// SIGKILLs the `sim-llm` process itself: no graceful shutdown, open connections cut.
    pub fn kill(mut self) {
        let pid = reaped_child(self.wrapper.id(), "sim-llm").expect("the sim-llm process id");
        kill_9(pid);
        wait_gone(&mut self.wrapper, "sim-llm");
    }

    /// Queues a fault through the admin API (`POST /_sim/faults`), e.g.
    /// `{"kind": "slow_stream", "delay_ms": 400, "count": 1}`.
    pub fn inject(&self, fault: &serde_json::Value) {
        let (code, body) = http_request(&self.addr, "POST", "/_sim/faults", Some(fault));
        assert_eq!(code, 200, "inject {fault}: {body}");
    }

    /// `GET /_sim/stats` as JSON.
    pub fn stats(&self) -> serde_json::Value {
        let (code, body) = http_request(&self.addr, "GET", "/_sim/stats", None);
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("stats {body:?}: {e}"))
    }
}

/// One HTTP/1.1 request with `Connection: close`: the status and the body.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    json: Option<&serde_json::Value>,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let body = json.map(ToString::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// `tool_server.py` over streamable HTTP at `http://127.0.0.1:PORT/mcp`.
pub struct HttpToolServer {
    wrapper: Option<Child>,
    pub port: u16,
}

impl HttpToolServer {
    /// Starts it on `port` and waits until it listens.
    pub fn start(port: u16) -> Self {
        let mut cmd = Command::new(super::support::python());
        cmd.arg(mcp_test_server("tool_server.py")).args([
            "--transport",
            "http",
            "--port",
            &port.to_string(),
        ]);
        let mut wrapper = gekko_testkit::reaped(&cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tool_server.py starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = wrapper.try_wait() {
                panic!("tool_server.py --transport http exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "tool_server.py did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            wrapper: Some(wrapper),
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// SIGKILLs the Python process (the server dies without a goodbye).
    pub fn kill(&mut self) {
        if let Some(mut w) = self.wrapper.take() {
            let pid = reaped_child(w.id(), "python").expect("the tool server's process id");
            kill_9(pid);
            wait_gone(&mut w, "tool_server.py");
        }
    }
}

impl Drop for HttpToolServer {
    fn drop(&mut self) {
        // Closing the reaper's stdin stops the server.
        if let Some(mut w) = self.wrapper.take() {
            drop(w.stdin.take());
            let _ = w.wait();
        }
    }
}
