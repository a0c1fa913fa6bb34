//! Sealed env files: round trip, wrong key, a tampered byte, a truncated file, rotation,
//! and the loader reading a sealed `GEKKO_ENV_FILE` (and refusing one it cannot open).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use gekko_config::sealed::{Key, SealError, is_sealed, seal, unseal};

const PLAIN: &str = "BINANCEUS_API_KEY=abc123key\nBINANCEUS_API_SECRET=\"s3cr3t value\"\nPOSITION_LIMITS=BTC-USD=2\n";

fn temp(name: &str, contents: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "gekko-sealed-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

#[test]
fn round_trip_and_fresh_nonces() {
    let key = Key::generate();
    let a = seal(PLAIN, &key);
    let b = seal(PLAIN, &key);
    assert!(is_sealed(&a) && !is_sealed(PLAIN));
    assert!(a.starts_with("GEKKO-SEALED v1\nkey="), "{a}");
    assert!(!a.contains("abc123key") && !a.contains("s3cr3t"));
    assert_ne!(a, b, "each seal uses a fresh nonce");
    assert_eq!(unseal(&a, &key).expect("opens"), PLAIN);
    assert_eq!(unseal(&b, &key).expect("opens"), PLAIN);
    let hex_key = Key::from_hex(&key.to_hex()).expect("hex round trip");
    assert_eq!(hex_key.id(), key.id());
    assert!(!format!("{key:?}").contains(key.to_hex().as_str()));
}

#[test]
fn wrong_key_is_named_as_such() {
    let sealed = seal(PLAIN, &Key::generate());
    let other = Key::generate();
    match unseal(&sealed, &other) {
        Err(SealError::WrongKey { key, .. }) => assert_eq!(key, other.id()),
        other => panic!("want WrongKey, got {other:?}"),
    }
}

#[test]
fn any_tampered_byte_is_refused() {
    let key = Key::generate();
    let sealed = seal(PLAIN, &key);
    let body_start = sealed
        .match_indices('\n')
        .nth(1)
        .expect("two header lines")
        .0
        + 1;
    // Flip characters across the whole body (nonce, ciphertext and tag) to other base64
    // characters, one at a time.
    let bytes = sealed.as_bytes();
    let mut checked = 0;
    for i in (body_start..sealed.len() - 1).step_by(7) {
        let mut t = bytes.to_vec();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(t).expect("ascii");
        match unseal(&t, &key) {
            Err(SealError::Tampered(_)) => checked += 1,
            other => panic!("byte {i}: want Tampered, got {other:?}"),
        }
    }
    assert!(checked > 10);
    // The header is authenticated too: a different length claim is not accepted.
    let forged = sealed.replacen(" len=", " len=1", 1);
    assert!(matches!(
        unseal(&forged, &key),
        Err(SealError::Tampered(_) | SealError::Truncated(_))
    ));
    assert!(matches!(
        unseal("GEKKO-SEALED v1\nkey=zz\nAAAA\n", &key),
        Err(SealError::Tampered(_))
    ));
}

#[test]
fn truncated_files_are_named_as_such_and_return_nothing() {
    let key = Key::generate();
    let sealed = seal(PLAIN, &key);
    for cut in [
        sealed.len() - 2,
        sealed.len() - 10,
        sealed.len() / 2,
        60,
        17,
    ] {
        match unseal(&sealed[..cut], &key) {
            Err(SealError::Truncated(_)) => {}
            other => panic!("cut at {cut}: want Truncated, got {other:?}"),
        }
    }
    assert_eq!(unseal(PLAIN, &key), Err(SealError::NotSealed));
    assert!(matches!(
        unseal("GEKKO-SEALED v9\n", &key),
        Err(SealError::UnsupportedVersion(_))
    ));
}

#[test]
fn rotation_reseals_with_the_new_key_only() {
    let old = Key::generate();
    let new = Key::generate();
    let sealed = seal(PLAIN, &old);
    let rotated = seal(&unseal(&sealed, &old).expect("old opens"), &new);
    assert_eq!(unseal(&rotated, &new).expect("new opens"), PLAIN);
    assert!(matches!(
        unseal(&rotated, &old),
        Err(SealError::WrongKey { .. })
    ));
}

#[test]
fn bad_keys_are_refused_without_echoing_them() {
    let e = Key::from_hex("hunter2").expect_err("short");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = Key::from_hex(&"zz".repeat(32)).expect_err("not hex");
    assert!(e.to_string().contains("not hexadecimal"), "{e}");
    let e = Key::from_file(std::path::Path::new("/nonexistent/key")).expect_err("missing");
    assert!(matches!(e, SealError::BadKey(_)));
}

/// The loader reads a sealed `GEKKO_ENV_FILE` with the key `ENCRYPTION_SETTINGS` names
/// (the test goes through `read_env_file` and `from_vars`, the same path `load` takes).
#[test]
fn sealed_env_file_is_read_with_the_configured_key() {
    let key = Key::generate();
    let key_file = temp("key", &format!("{}\n", key.to_hex().as_str()));
    let env = temp("gekko.env.sealed", &seal(PLAIN, &key));
    let vars = gekko_config::read_env_file(&env, "GEKKO_ENV_FILE", Some(&key)).expect("opens");
    assert_eq!(
        vars.get("BINANCEUS_API_KEY").map(String::as_str),
        Some("abc123key")
    );
    let settings = format!("key_file={}", key_file.display());
    let cfg = gekko_config::from_vars(&{
        let mut v = vars.clone();
        v.insert("ENCRYPTION_SETTINGS".to_owned(), settings);
        v
    })
    .expect("valid")
    .config;
    assert_eq!(cfg.position_limits.len(), 1);
    assert!(!cfg.paper_mode(gekko_config::VenueId::BinanceUs));
}

#[test]
fn a_sealed_env_file_that_cannot_be_opened_is_one_clear_problem() {
    let key = Key::generate();
    let sealed = seal(PLAIN, &key);
    let env = temp("gekko.env.sealed", &sealed);
    // No key configured.
    let e = gekko_config::read_env_file(&env, "GEKKO_ENV_FILE", None).expect_err("no key");
    assert!(e.to_string().contains("names no key"), "{e}");
    // Wrong key, tampered, truncated: each named, no variable returned, no value shown.
    let wrong = gekko_config::read_env_file(&env, "GEKKO_ENV_FILE", Some(&Key::generate()))
        .expect_err("wrong key");
    assert!(wrong.to_string().contains("wrong key"), "{wrong}");
    let cut = temp("cut.env", &sealed[..sealed.len() / 2]);
    let e = gekko_config::read_env_file(&cut, "GEKKO_ENV_FILE", Some(&key)).expect_err("cut");
    assert!(e.to_string().contains("truncated"), "{e}");
    for text in [wrong.to_string(), e.to_string()] {
        assert!(
            !text.contains("abc123key") && !text.contains("s3cr3t"),
            "{text}"
        );
    }
}
