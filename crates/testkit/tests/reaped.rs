//! [`gekko_testkit::reaped`]: the wrapped process runs, sees its arguments and
//! environment, and is stopped when the wrapper's stdin closes.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn alive(pid: &str) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn the_wrapped_process_runs_with_its_environment_and_stops_when_stdin_closes() {
    let mut inner = Command::new("sh");
    inner
        .arg("-c")
        .arg("echo \"$$ $GEKKO_REAPED_TEST $1\"; exec sleep 60")
        .arg("sh")
        .arg("first-arg")
        .env("GEKKO_REAPED_TEST", "env-ok");
    let mut child = gekko_testkit::reaped(&inner)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the reaper");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).expect("read") == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).expect("utf-8");
    let mut parts = line.split(' ');
    let pid = parts.next().expect("pid").to_owned();
    assert_eq!(parts.next(), Some("env-ok"), "{line}");
    assert_eq!(parts.next(), Some("first-arg"), "{line}");
    assert!(alive(&pid), "the wrapped process runs");

    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(&pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(&pid),
        "the wrapped process {pid} stopped once stdin closed"
    );
    let status = child.wait().expect("wait");
    assert!(
        !status.success(),
        "a process stopped by SIGTERM does not exit 0"
    );
}
