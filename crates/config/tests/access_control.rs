//! `ACCESS_CONTROL_CONFIG`: tokens by hash with roles and TOTP, the deprecated single token,
//! `allowed_clients` naming tokens, `open=`, the failure budget and the TLS files. Every
//! problem is reported in one pass and no secret is echoed.

use std::collections::BTreeMap;
use std::path::Path;

use gekko_config::{AccessControl, ConfigErrors, Loaded, OpenServices, Role, from_vars};
use secrecy::ExposeSecret;

const H1: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const H2: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
/// "12345678901234567890" in base32: the RFC 6238 test secret.
const TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn load(access: &str) -> Result<Loaded, ConfigErrors> {
    let vars = BTreeMap::from([("ACCESS_CONTROL_CONFIG".to_owned(), access.to_owned())]);
    from_vars(&vars)
}

fn ok(access: &str) -> AccessControl {
    match load(access) {
        Ok(l) => l.config.access_control,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn err(access: &str) -> ConfigErrors {
    match load(access) {
        Ok(l) => panic!("expected problems, got {:?}", l.config.access_control),
        Err(e) => e,
    }
}

#[test]
fn defaults_mean_auth_off_health_and_reflection_open() {
    let loaded = from_vars(&BTreeMap::new()).expect("empty env is valid");
    let a = loaded.config.access_control;
    assert!(!a.auth_enabled());
    assert!(a.tokens.is_empty());
    assert!(!a.read_only);
    assert_eq!(
        a.open,
        OpenServices {
            health: true,
            reflection: true
        }
    );
    assert_eq!(a.auth_failures_per_minute, 10);
    assert!(!a.tls_enabled());
    assert!(loaded.warnings.is_empty());
}

#[test]
fn tokens_parse_with_roles_hashes_and_totp() {
    let a = ok(&format!(
        "tokens=ops:admin:{H1}:totp={};bot:trader:{};dash:viewer:{H1},allowed_clients=ops;bot,open=health,auth_failures_per_minute=3",
        TOTP.to_lowercase(),
        H2.to_uppercase()
    ));
    let names: Vec<_> = a.tokens.iter().map(|t| (t.name.as_str(), t.role)).collect();
    assert_eq!(
        names,
        [
            ("ops", Role::Admin),
            ("bot", Role::Trader),
            ("dash", Role::Viewer)
        ]
    );
    assert_eq!(a.tokens[0].sha256[0], 0x9f);
    assert_eq!(a.tokens[1].sha256[31], 0x52);
    assert_eq!(
        a.tokens[0]
            .totp_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned()),
        Some(TOTP.to_owned()),
        "the secret is normalised to upper case"
    );
    assert!(a.tokens[1].totp_secret.is_none());
    assert_eq!(a.allowed_clients, ["ops", "bot"]);
    assert_eq!(
        a.open,
        OpenServices {
            health: true,
            reflection: false
        }
    );
    assert_eq!(a.auth_failures_per_minute, 3);
    assert!(Role::Viewer < Role::Trader && Role::Trader < Role::Admin);
}

#[test]
fn open_none_closes_both() {
    let a = ok("open=none");
    assert!(!a.open.health && !a.open.reflection);
    let a = ok("open=reflection;health");
    assert!(a.open.health && a.open.reflection);
}

#[test]
fn the_legacy_token_is_an_admin_named_legacy_with_a_warning() {
    let loaded = load("grpc_auth_token=0123456789abcdef-legacy").expect("valid");
    let a = &loaded.config.access_control;
    assert_eq!(a.tokens.len(), 1);
    assert_eq!(a.tokens[0].name, "legacy");
    assert_eq!(a.tokens[0].role, Role::Admin);
    // SHA-256 of the token, computed by the loader so the plain token is compared nowhere.
    let got: String = a.tokens[0]
        .sha256
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        got,
        "23ef55c0d5c0f30fe21b227bd727068796c1aa599274664beba8a726cec0b68c"
    );
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].message.contains("deprecated")
            && loaded.warnings[0].variable == "ACCESS_CONTROL_CONFIG"
    );
    let text = format!("{:?} {:?}", loaded.warnings, loaded.config);
    assert!(!text.contains("0123456789abcdef-legacy"), "{text}");
}

#[test]
fn every_token_problem_is_reported_without_echoing_secrets() {
    let e = err(&format!(
        "tokens=a:admin:{H1};a:viewer:{H1};b:boss:{H1};c:trader:abc;d:viewer:{H1}:totp=SECRET-not-b32!;e:viewer:{H1}:totp=GEZDG;f:viewer:{H1}:hunter2;g b:viewer:{H1};justaname"
    ));
    let text = e.to_string();
    for needle in [
        "`a` is listed more than once",
        "`b`: role",
        "`c`: the hash is not 64 hexadecimal characters",
        "`d`: totp secret (withheld) is not base32",
        "`e`: totp secret (withheld) is only 3 bytes",
        "`f`: the 4th field is not totp=BASE32SECRET",
        "entry 8",
        "entry 9 is not name:role:sha256hex",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(
        !text.contains("SECRET-not-b32") && !text.contains("hunter2"),
        "{text}"
    );
    // One problem line for the key, listing every bad entry.
    assert_eq!(e.problems.len(), 1, "{text}");
}

#[test]
fn allowed_clients_must_name_configured_tokens() {
    let e = err(&format!(
        "tokens=ops:admin:{H1},allowed_clients=ops;ghost;cli"
    ));
    let text = e.to_string();
    assert!(
        text.contains("allowed_clients: `ghost`, `cli` are not a configured token name"),
        "{text}"
    );
    let e = err("allowed_clients=cli");
    assert!(
        e.to_string()
            .contains("`cli` is not a configured token name"),
        "{e}"
    );
    // `legacy` is the deprecated token's name.
    let a = ok("grpc_auth_token=0123456789abcdef-legacy,allowed_clients=legacy");
    assert_eq!(a.allowed_clients, ["legacy"]);
}

#[test]
fn legacy_may_not_be_named_twice() {
    let e = err(&format!(
        "tokens=legacy:viewer:{H1},grpc_auth_token=0123456789abcdef-legacy"
    ));
    assert!(e.to_string().contains("`legacy` is taken"), "{e}");
}

#[test]
fn tls_files_come_in_pairs_and_mtls_needs_tls() {
    let a = ok("tls_cert=/c.pem,tls_key=/k.pem,tls_client_ca=/ca.pem");
    assert!(a.tls_enabled());
    assert_eq!(a.tls_client_ca.as_deref(), Some(Path::new("/ca.pem")));
    let e = err("tls_cert=/c.pem");
    assert!(
        e.to_string().contains("tls_cert is set without tls_key"),
        "{e}"
    );
    let e = err("tls_client_ca=/ca.pem");
    assert!(
        e.to_string()
            .contains("tls_client_ca is set without tls_cert"),
        "{e}"
    );
    let e = err("tls_key=/k.pem");
    assert!(
        e.to_string().contains("tls_key is set without tls_cert"),
        "{e}"
    );
}

#[test]
fn all_problems_of_the_section_at_once() {
    let e = err(
        "tokens=x:root:00,open=everything,auth_failures_per_minute=0,tls_key=/k,read_only=maybe",
    );
    let text = e.to_string();
    assert_eq!(e.problems.len(), 5, "{text}");
    for needle in [
        "tokens:",
        "open:",
        "auth_failures_per_minute:",
        "tls_key is set without",
        "read_only:",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
