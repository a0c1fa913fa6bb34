//! The posture findings for typical configurations: local paper use passes, a public
//! address without tokens fails a required row, plaintext off loopback and world-readable
//! secrets files fail loudly, and live credentials in plain env are flagged when a
//! sealing key exists.

use std::collections::BTreeMap;

use gekko_security::{Finding, posture};

fn config(pairs: &[(&str, &str)]) -> gekko_config::GekkoConfig {
    let vars: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match gekko_config::from_vars(&vars) {
        Ok(l) => l.config,
        Err(e) => panic!("bad test config: {e}"),
    }
}

fn find<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} finding in {findings:?}"))
}

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

#[test]
fn local_paper_use_passes_everything() {
    let f = posture(&config(&[]), None);
    assert!(f.iter().all(|f| f.ok), "{f:?}");
    assert!(find(&f, "grpc-auth").detail.contains("loopback"));
    assert_eq!(find(&f, "tls-version").detail, "TLS off");
}

#[test]
fn a_public_address_without_tokens_fails_a_required_row_and_plaintext_is_loud() {
    let f = posture(
        &config(&[(
            "MONITORING_CONFIGURATIONS",
            "grpc_addr=0.0.0.0:50051,http_addr=0.0.0.0:9464",
        )]),
        None,
    );
    let auth = find(&f, "grpc-auth");
    assert!(!auth.ok && auth.required, "{auth:?}");
    assert!(auth.detail.contains("NO TOKENS"), "{auth:?}");
    for check in ["grpc-tls", "http-tls"] {
        let row = find(&f, check);
        assert!(!row.ok && !row.required, "{row:?}");
        assert!(row.detail.contains("PLAINTEXT"), "{row:?}");
    }

    // Tokens and TLS fix both (the files are only read at start-up, not here).
    let f = posture(
        &config(&[
            (
                "MONITORING_CONFIGURATIONS",
                "grpc_addr=0.0.0.0:50051,http_addr=0.0.0.0:9464",
            ),
            (
                "ACCESS_CONTROL_CONFIG",
                &format!(
                    "tokens=ops:admin:{HASH},tls_cert=/c.pem,tls_key=/nonexistent.key,tls_client_ca=/ca.pem"
                ),
            ),
        ]),
        None,
    );
    for check in ["grpc-auth", "grpc-tls", "http-tls", "tls-version"] {
        assert!(find(&f, check).ok, "{:?}", find(&f, check));
    }
    assert!(find(&f, "grpc-tls").detail.contains("mTLS"));
    assert!(find(&f, "tls-version").detail.contains("1.2"));
    // The key file could not be inspected: a failing, non-required row.
    let key = find(&f, "tls-key-file");
    assert!(!key.ok && !key.required, "{key:?}");
}

#[cfg(unix)]
#[test]
fn world_readable_env_and_key_files_fail() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("gekko-posture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let env = dir.join(".env");
    let key = dir.join("server.key");
    std::fs::write(&env, "X=1\n").unwrap();
    std::fs::write(&key, "k").unwrap();
    let cfg = config(&[(
        "ACCESS_CONTROL_CONFIG",
        &format!("tls_cert=/c.pem,tls_key={}", key.display()),
    )]);
    for (mode, ok) in [(0o644, false), (0o600, true), (0o640, true)] {
        std::fs::set_permissions(&env, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let f = posture(&cfg, Some(&env));
        assert_eq!(find(&f, "env-file").ok, ok, "{mode:o} {f:?}");
        assert_eq!(find(&f, "tls-key-file").ok, ok, "{mode:o} {f:?}");
        if !ok {
            assert!(find(&f, "env-file").detail.contains("WORLD-READABLE"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn live_credentials_in_plain_env_with_a_sealing_key_are_flagged() {
    let live = [
        ("OANDA_API_TOKEN", "tok"),
        ("OANDA_ACCOUNT_ID", "101-001-1234567-001"),
    ];
    let f = posture(&config(&live), None);
    assert!(find(&f, "plain-credentials").ok);
    let mut sealed = live.to_vec();
    sealed.push(("ENCRYPTION_SETTINGS", "key_file=/run/secrets/k"));
    let f = posture(&config(&sealed), None);
    let row = find(&f, "plain-credentials");
    assert!(!row.ok && !row.required, "{row:?}");
    assert!(row.detail.contains("oanda"), "{row:?}");
}

#[test]
fn mcp_http_off_loopback_is_loud_and_on_loopback_or_off_passes() {
    let public = posture(&config(&[("MCP_SETTINGS", "http_addr=0.0.0.0:9470")]), None);
    let f = find(&public, "mcp-http-tls");
    assert!(!f.ok && !f.required, "{f:?}");
    assert!(
        f.detail.contains("PLAINTEXT MCP HTTP") && f.detail.contains("0.0.0.0:9470"),
        "{f:?}"
    );
    assert!(f.detail.contains("bearer token"), "{f:?}");
    let local = posture(&config(&[]), None);
    let f = find(&local, "mcp-http-tls");
    assert!(
        f.ok && f.detail.contains("loopback 127.0.0.1:9470"),
        "{f:?}"
    );
    let off = posture(&config(&[("MCP_SETTINGS", "http_addr=off")]), None);
    let f = find(&off, "mcp-http-tls");
    assert!(f.ok && f.detail.contains("off"), "{f:?}");
}
