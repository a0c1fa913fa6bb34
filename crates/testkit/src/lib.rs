//! Test harness shared by every gekko crate.
//!
//! The main piece is [`RedisServer`]: a real `redis-server` process on a free loopback
//! port, with append-only persistence (`appendfsync always`) in a private temp directory,
//! so tests can kill and restart it and check that nothing acknowledged was lost.
//! It never skips: when `redis-server` cannot be started the error says why and how to
//! fix it, and the test fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod cluster;
pub use cluster::RedisCluster;

/// The `redis-server` binary: `$REDIS_SERVER` if set, else from `PATH`.
fn redis_server_bin() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

/// A running `redis-server` owned by one test. Killed and cleaned up on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    fsync: &'static str,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Panics
    /// Panics with an actionable message when `redis-server` is missing or will not start:
    /// a test that needs Redis must fail loudly, never skip.
    #[must_use]
    pub fn start() -> Self {
        match Self::try_start() {
            Ok(s) => s,
            Err(e) => panic!(
                "cannot start redis-server for this test: {e}\n\
                 install it with `scripts/test.sh` (or `apt-get install redis-server`), \
                 or point $REDIS_SERVER at the binary"
            ),
        }
    }

    /// Like [`RedisServer::start`] but returns the error instead of panicking.
    ///
    /// # Errors
    /// Returns a description of why no server could be started after several ports.
    pub fn try_start() -> Result<Self, String> {
        Self::try_start_with_fsync("always")
    }

    /// Starts a server with the given `appendfsync` policy (`always`, `everysec`, `no`).
    /// Benchmarks use `everysec`, the usual production setting; tests use `always`.
    ///
    /// # Errors
    /// As [`RedisServer::try_start`].
    pub fn try_start_with_fsync(fsync: &'static str) -> Result<Self, String> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gekko-redis-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut last_err = String::new();
        // The port is free when we look but another process may take it before redis binds;
        // retry a few times rather than fail on that race.
        for _ in 0..5 {
            let port = free_port().map_err(|e| format!("find a free port: {e}"))?;
            let mut server = Self {
                child: None,
                port,
                dir: dir.clone(),
                fsync,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => {
                    last_err = e;
                    server.kill();
                }
            }
        }
        Err(last_err)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new(redis_server_bin())
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                &self.dir.to_string_lossy(),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                self.fsync,
                "--protected-mode",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn `{}`: {e}", redis_server_bin()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("redis-server exited at start-up with {status}"));
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "redis-server on port {} did not answer PING within 10 s",
            self.port
        ))
    }

    /// `redis://127.0.0.1:PORT/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with SIGKILL: no clean shutdown, no final fsync beyond what
    /// `appendfsync always` already did. This is the harshest crash we can simulate.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    ///
    /// # Panics
    /// Panics if it cannot restart within 10 s.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn() {
            panic!("redis-server restart failed: {e}");
        }
    }

    /// Whether the server currently answers `PING`.
    #[must_use]
    pub fn is_up(&self) -> bool {
        ping(self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port that was free a moment ago.
///
/// # Errors
/// Returns the bind error.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes. Returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls a synchronous condition every 20 ms until it holds.
///
/// # Panics
/// When it does not hold within `timeout`; the message names `what`.
pub async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls an async `check` every 20 ms until it yields `Some`, and returns the value.
///
/// # Panics
/// When it yields nothing within `timeout`; the message names `what`.
pub async fn poll_some<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let poll = async {
        loop {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(timeout, poll)
        .await
        .unwrap_or_else(|_| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Receives from `rx` until an item matches `want`, skipping the others.
///
/// # Panics
/// When nothing matches within `timeout` or the channel closes; the message names `what`.
pub async fn recv_matching<T>(
    rx: &mut tokio::sync::mpsc::Receiver<T>,
    what: &str,
    timeout: Duration,
    mut want: impl FnMut(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(item)) if want(&item) => return item,
            Ok(Some(_)) => {}
            Ok(None) => panic!("channel closed while waiting for {what}"),
            Err(_) => panic!("nothing matching {what} within {timeout:?}"),
        }
    }
}

/// The `sh` script behind [`reaped`]: runs the command with stdin from `/dev/null`, and
/// stops it (SIGTERM, then SIGKILL after 5 s) once the wrapper's own stdin reaches end of
/// file, which happens when the test process that holds the other end exits for any
/// reason, a panic or a `process::exit` included.
const REAPER: &str = r#"exec 3<&0
"$@" </dev/null &
child=$!
( cat <&3 >/dev/null; kill -TERM "$child" 2>/dev/null; sleep 5; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"
rc=$?
kill "$watcher" 2>/dev/null
exit $rc"#;

/// `cmd` wrapped so that the process cannot outlive the test binary.
///
/// A process shared by several tests (held in a `OnceLock`) is never dropped, so nothing
/// would kill it when the tests end. The returned command runs `cmd` under a small `sh`
/// reaper whose stdin is a pipe held by the spawned [`Child`]: when the test process exits
/// the pipe closes and the reaper stops the real process. Program, arguments, environment
/// and working directory are copied from `cmd`; set stdout/stderr on the returned command
/// as usual, but leave its stdin alone (it must stay piped, and the `Child`'s `stdin`
/// handle must be kept). To stop the process early, drop `child.stdin.take()` (or send
/// SIGTERM to the wrapper) and `wait()`; SIGKILL on the wrapper would leave the real
/// process running until the test binary exits.
#[must_use]
pub fn reaped(cmd: &Command) -> Command {
    let mut out = Command::new("sh");
    out.arg("-c").arg(REAPER).arg("gekko-reaper");
    out.arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => out.env(k, v),
            None => out.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        out.current_dir(dir);
    }
    out.stdin(Stdio::piped());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recv_matching_skips_until_a_match() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        for i in [1, 2, 3] {
            tx.send(i).await.unwrap();
        }
        let got = recv_matching(&mut rx, "an even number", Duration::from_secs(1), |i| {
            i % 2 == 0
        })
        .await;
        assert_eq!(got, 2);
        wait_until("true", Duration::from_secs(1), || true).await;
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for never")]
    async fn wait_until_fails_loudly() {
        wait_until("never", Duration::from_millis(50), || false).await;
    }
}
