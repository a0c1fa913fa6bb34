//! `sim-llm` as a real child process: it prints its base URL on stdout once listening,
//! serves both path styles with the keys it was given, is driven through its admin API
//! (`/_sim/faults`, `/_sim/stats`), stops cleanly on SIGTERM (exit 0), and refuses an
//! invalid configuration (exit 64) or a taken port (exit 1).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_sim-llm");

/// A running `sim-llm`, killed on drop if a test fails before stopping it.
struct Proc {
    child: Child,
    base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sim-llm starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("sim-llm prints its base URL");
        let base = line.trim().to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{line:?}");
        Self { child, base }
    }

    fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "sim-llm did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test]
async fn serves_its_keys_takes_faults_over_http_and_stops_on_sigterm() {
    let mut p = Proc::start(&[
        "--addr",
        "127.0.0.1:0",
        "--key",
        "sk-or-v1-proc-a",
        "--key",
        "sk-or-v1-proc-b",
    ]);
    let c = client();
    let models: Value = c
        .get(format!("{}/api/v1/models", p.base))
        .send()
        .await
        .expect("models")
        .json()
        .await
        .expect("json");
    assert_eq!(models["data"].as_array().map(Vec::len), Some(3), "{models}");

    let chat = |key: &'static str| {
        c.post(format!("{}/v1/chat/completions", p.base))
            .bearer_auth(key)
            .json(&json!({"model": "openai/gpt-4o-mini",
                          "messages": [{"role": "user", "content": "ping"}]}))
            .send()
    };
    for key in ["sk-or-v1-proc-a", "sk-or-v1-proc-b"] {
        let resp = chat(key).await.expect("chat");
        assert_eq!(resp.status(), 200, "{key}");
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["choices"][0]["message"]["content"], "sim reply to: ping");
    }
    assert_eq!(
        chat("sk-or-v1-paper").await.expect("chat").status(),
        401,
        "only the given keys"
    );

    let queued = c
        .post(format!("{}/_sim/faults", p.base))
        .json(&json!({"kind": "status", "code": 429, "retry_after_s": 1}))
        .send()
        .await
        .expect("inject");
    assert_eq!(queued.status(), 200);
    let limited = chat("sk-or-v1-proc-a").await.expect("chat");
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");

    let stats: Value = c
        .get(format!("{}/_sim/stats", p.base))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["chat_requests"], 4, "{stats}");
    assert_eq!(stats["models_requests"], 1, "{stats}");
    assert_eq!(stats["auth_failures"], 1, "{stats}");
    assert_eq!(stats["faults_served"], 1, "{stats}");

    let status = p.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let after = c.get(format!("{}/api/v1/models", p.base)).send().await;
    assert!(after.is_err(), "nothing listens after the stop");
}

#[test]
fn an_invalid_config_exits_64_and_a_taken_port_exits_1() {
    let out = Command::new(BIN)
        .args(["--addr", "127.0.0.1:0", "--keepalive-ms", "0"])
        .output()
        .expect("sim-llm runs");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keepalive_every"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "no base URL for a simulator that never listened"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = Command::new(BIN)
        .args(["--addr", &addr])
        .output()
        .expect("sim-llm runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr), "the error names the address: {err}");
}
