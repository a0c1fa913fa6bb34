//! `AUDIT_LOGGING_SETTINGS`: defaults, the key and key file, the archive directory, and
//! that the key never shows in `Debug` or in problems.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gekko_config::{AuditLogging, from_vars};
use secrecy::ExposeSecret;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn load(value: &str) -> Result<AuditLogging, String> {
    let vars: BTreeMap<String, String> =
        [("AUDIT_LOGGING_SETTINGS".to_owned(), value.to_owned())].into();
    from_vars(&vars)
        .map(|l| l.config.audit_logging)
        .map_err(|e| e.to_string())
}

#[test]
fn defaults() {
    let a = AuditLogging::default();
    assert!(a.enabled);
    assert_eq!(a.stream, "gekko:audit");
    assert_eq!(a.retention_days, 365);
    assert!(a.key.is_none() && a.key_file.is_none());
    assert_eq!(a.archive_dir, PathBuf::from("./audit-archive"));
    assert_eq!(AuditLogging::GENERATED_KEY_FILE, "audit.key");
    let loaded = load("retention_days=90").unwrap();
    assert_eq!(loaded.retention_days, 90);
    assert_eq!(loaded.stream, "gekko:audit");
}

#[test]
fn key_key_file_and_archive_dir() {
    let a = load(&format!("key={KEY},archive_dir=/var/lib/gekko/audit")).unwrap();
    assert_eq!(
        a.key.as_ref().map(|k| k.expose_secret().to_owned()),
        Some(KEY.to_owned())
    );
    assert_eq!(a.archive_dir, PathBuf::from("/var/lib/gekko/audit"));
    let a = load("key_file=/run/secrets/audit").unwrap();
    assert_eq!(a.key_file, Some(PathBuf::from("/run/secrets/audit")));
    assert!(a.key.is_none());
}

#[test]
fn the_key_never_shows() {
    let a = load(&format!("key={KEY}")).unwrap();
    let debug = format!("{a:?}");
    assert!(
        !debug.contains(KEY) && !debug.contains("00112233"),
        "{debug}"
    );
    assert!(debug.contains("key: Some(\"***\")"), "{debug}");
    // A malformed key is described by its shape only.
    let bad = "0123456789abcdef0123456789abcdefXYZ";
    let err = load(&format!("key={bad}")).unwrap_err();
    assert!(
        !err.contains(bad) && !err.contains("0123456789abcdef"),
        "{err}"
    );
    assert!(
        err.contains("AUDIT_LOGGING_SETTINGS")
            && err.contains("key: the value (withheld) is 35 characters and not all hexadecimal"),
        "{err}"
    );
}

#[test]
fn every_problem_at_once() {
    let err = load(&format!(
        "key={KEY},key_file=/k,archive_dir=,retention_days=0,stream=a b,colour=red"
    ))
    .unwrap_err();
    for want in [
        "key and key_file are both set",
        "archive_dir: is empty",
        "retention_days",
        "stream",
        "unknown key `colour`",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains(KEY), "{err}");
}
