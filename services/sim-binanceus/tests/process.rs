//! `sim-binanceus` as a real child process: a `--fault` flag is injected before it serves
//! (here two 503s, then normal answers), SIGTERM stops it with exit 0, and a `--fault`
//! value the admin API would refuse exits 64 with a message naming the flag.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sim-binanceus");

/// A running `sim-binanceus`, killed on drop if a test fails before stopping it.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// `GET path` over a fresh connection; the status code.
fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "sim-binanceus never listened on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(p: &mut Proc) -> ExitStatus {
    let pid = p.0.id().to_string();
    let sent = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .expect("sh runs");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = p.0.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "sim-binanceus did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_fault_flag_is_in_force_from_the_first_request() {
    let (rest, ws) = (free_addr(), free_addr());
    let child = Command::new(BIN)
        .args([
            "--rest-addr",
            &rest.to_string(),
            "--ws-addr",
            &ws.to_string(),
        ])
        .args(["--fault", r#"{"kind":"server_errors","count":2}"#])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sim-binanceus starts");
    let mut p = Proc(child);
    wait_listening(rest);
    let statuses: Vec<Option<u16>> = (0..3).map(|_| get_status(rest, "/api/v3/ping")).collect();
    assert_eq!(
        statuses,
        [Some(503), Some(503), Some(200)],
        "two injected 5xx, then the venue answers"
    );
    let status = terminate(&mut p);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn a_bad_fault_flag_exits_64_naming_it() {
    for bad in [r#"{"kind":"meteor"}"#, "server_errors=2"] {
        let out = Command::new(BIN)
            .args(["--rest-addr", &free_addr().to_string()])
            .args(["--ws-addr", &free_addr().to_string()])
            .args(["--fault", r#"{"kind":"drop_websockets"}"#, "--fault", bad])
            .stdin(Stdio::null())
            .output()
            .expect("sim-binanceus runs");
        assert_eq!(out.status.code(), Some(64), "{bad}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("--fault {bad}")) && stderr.contains("invalid fault JSON"),
            "{bad}: the message names the flag and the value: {stderr}"
        );
        assert_eq!(
            stderr.matches("--fault ").count(),
            1,
            "only the bad value is reported: {stderr}"
        );
    }
}
