//! `gekko secrets` as a process: keygen, seal, `unseal --check` (names, never values),
//! a wrong key, a tampered byte and a truncated file (each exit 1, named), rotation (the
//! new key opens it, the old no longer does), and the key taken from
//! `ENCRYPTION_SETTINGS`.

use std::path::{Path, PathBuf};
use std::process::Command;

const SECRET: &str = "s3cr3t-binance-value";

fn dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "gekko-secrets-cli-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs `gekko secrets ARGS` in a clean environment (plus `env`).
fn secrets(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gekko"));
    cmd.arg("secrets")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(std::env::temp_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run gekko");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn seal_check_tamper_truncate_and_rotate() {
    let d = dir();
    let (k1, k2) = (d.join("k1"), d.join("k2"));
    for k in [&k1, &k2] {
        let (code, out, err) = secrets(&["keygen", s(k)], &[]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("wrote key"), "{out}");
    }
    // keygen never overwrites.
    let (code, _, err) = secrets(&["keygen", s(&k1)], &[]);
    assert_eq!(code, 64, "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&k1).expect("key").permissions().mode();
        assert_eq!(mode & 0o077, 0, "key file mode {mode:o}");
    }

    let plain = d.join("live.env");
    std::fs::write(
        &plain,
        format!(
            "BINANCEUS_API_KEY=key-id-1\nBINANCEUS_API_SECRET={SECRET}\nPOSITION_LIMITS=BTC-USD=1\n"
        ),
    )
    .expect("write");
    let sealed = d.join("live.env.sealed");
    let (code, out, err) = secrets(&["seal", s(&plain), s(&sealed), "--key-file", s(&k1)], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sealed 3 variables"), "{out}");
    let text = std::fs::read_to_string(&sealed).expect("sealed");
    assert!(text.starts_with("GEKKO-SEALED v1\n") && !text.contains(SECRET));

    // --check prints the names, never a value; the key comes from ENCRYPTION_SETTINGS too.
    let enc = [("ENCRYPTION_SETTINGS", format!("key_file={}", s(&k1)))];
    let (code, out, err) = secrets(&["unseal", "--check", s(&sealed)], &enc);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("3 variables") && out.contains("BINANCEUS_API_SECRET"),
        "{out}"
    );
    assert!(!out.contains(SECRET) && !err.contains(SECRET), "{out}{err}");
    // Without --check nothing is printed.
    let (code, out, _) = secrets(&["unseal", s(&sealed), "--key-file", s(&k1)], &[]);
    assert_eq!(code, 64);
    assert!(!out.contains(SECRET));
    // No key at all.
    let (code, _, err) = secrets(&["unseal", "--check", s(&sealed)], &[]);
    assert_eq!(code, 64);
    assert!(err.contains("no key"), "{err}");

    // Wrong key, tampered, truncated: exit 1, each named.
    let (code, _, err) = secrets(
        &["unseal", "--check", s(&sealed), "--key-file", s(&k2)],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("wrong key"), "{err}");
    let tampered = d.join("tampered.sealed");
    let mut bytes = text.clone().into_bytes();
    let at = bytes.len() - 20;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&tampered, &bytes).expect("write");
    let (code, _, err) = secrets(
        &["unseal", "--check", s(&tampered), "--key-file", s(&k1)],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("tampered"), "{err}");
    let truncated = d.join("truncated.sealed");
    std::fs::write(&truncated, &text[..text.len() * 2 / 3]).expect("write");
    let (code, _, err) = secrets(
        &["unseal", "--check", s(&truncated), "--key-file", s(&k1)],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("truncated"), "{err}");

    // Rotate: the new key opens it, the old one no longer does; a failed rotation (wrong
    // current key) leaves the file as it was.
    let (code, _, err) = secrets(
        &[
            "rotate",
            s(&sealed),
            "--new-key-file",
            s(&k1),
            "--key-file",
            s(&k2),
        ],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(std::fs::read_to_string(&sealed).expect("file"), text);
    let (code, out, err) = secrets(&["rotate", s(&sealed), "--new-key-file", s(&k2)], &enc);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rotated"), "{out}");
    let (code, out, err) = secrets(
        &["unseal", "--check", s(&sealed), "--key-file", s(&k2)],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("BINANCEUS_API_SECRET"));
    let (code, _, err) = secrets(
        &["unseal", "--check", s(&sealed), "--key-file", s(&k1)],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("wrong key"), "{err}");
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&d).ok();
}
