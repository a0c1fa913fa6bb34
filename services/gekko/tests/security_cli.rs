//! `gekko token new` and `gekko certs dev` as an operator runs them: the printed entry is
//! valid config that authenticates the printed token, and the certificates load as TLS
//! material with private keys at mode 0600. Neither command reads the environment's
//! config, so they work with a broken one.

use std::collections::BTreeMap;
use std::process::Command;

use gekko_security::{Role, ServerTls, TokenSet};

fn gekko(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gekko"))
        .args(args)
        // A broken config must not matter to these offline tools.
        .env("POSITION_LIMITS", "NOT A PAIR=1")
        .env("GEKKO_ENV_FILE", "/nonexistent/gekko.env")
        .output()
        .expect("run gekko");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn line_after<'a>(text: &'a str, heading: &str) -> &'a str {
    let mut lines = text.lines();
    lines.find(|l| l.starts_with(heading)).expect(heading);
    lines.next().expect("a line after the heading").trim()
}

#[test]
fn token_new_prints_a_token_and_the_entry_that_accepts_it() {
    let (ok, out, err) = gekko(&[
        "token", "new", "--role", "trader", "--name", "bot", "--totp",
    ]);
    assert!(ok, "{err}");
    let token = line_after(&out, "token (shown once");
    assert!(token.starts_with("gk_"), "{out}");
    let entry = line_after(&out, "add this entry");
    let entry = entry.strip_prefix("tokens=").expect("a tokens= entry");
    assert!(
        entry.starts_with("bot:trader:") && entry.contains(":totp="),
        "{entry}"
    );
    assert!(
        !entry.contains(token),
        "the entry holds the hash, not the token"
    );
    assert!(out.contains("otpauth://totp/gekko:bot?secret="), "{out}");

    let vars = BTreeMap::from([(
        "ACCESS_CONTROL_CONFIG".to_owned(),
        format!("tokens={entry}"),
    )]);
    let cfg = gekko_config::from_vars(&vars).expect("the printed entry is valid config");
    let set = TokenSet::from_config(&cfg.config.access_control).expect("tokens");
    let hit = set
        .authenticate(token)
        .expect("the printed token authenticates");
    assert_eq!((hit.name.as_str(), hit.role), ("bot", Role::Trader));
    assert!(hit.totp.is_some());

    let (ok, _, err) = gekko(&["token", "new", "--role", "root"]);
    assert!(!ok, "an unknown role is refused");
    assert!(err.contains("root"), "{err}");
}

#[test]
fn certs_dev_writes_usable_material_with_private_keys() {
    let dir = std::env::temp_dir().join(format!("gekko-certs-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out_dir = dir.to_str().expect("utf-8 temp dir");
    let (ok, out, err) = gekko(&["certs", "dev", "--out", out_dir]);
    assert!(ok, "{err}");
    assert!(
        out.contains("tls_cert=") && out.contains("tls_client_ca="),
        "{out}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for key in ["ca.key", "server.key", "client.key"] {
            let mode = std::fs::metadata(dir.join(key))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{key}");
        }
    }
    let tls = ServerTls::from_files(
        &dir.join("server.pem"),
        &dir.join("server.key"),
        Some(&dir.join("ca.pem")),
    )
    .expect("the server material loads");
    assert!(tls.mtls());
    let _ = std::fs::remove_dir_all(&dir);
}
