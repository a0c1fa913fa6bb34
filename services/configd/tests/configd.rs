//! configd as a process on a real `redis-server`, called over real TCP gRPC with tokens:
//! redacted `GetConfig`, `GetSecrets` by role, `Validate` with every problem, hot reload
//! of a valid change (a new version on `Watch` and on `gekko:config`) and of an invalid
//! one (rejected, the old version stays), a restart-needed change, the metrics, and a
//! sealed env file (opened with the right key; refused whole with a wrong key or when
//! tampered).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gekko_config::sealed::{Key, seal};
use gekko_proto::v1 as pb;
use gekko_proto::v1::config_service_client::ConfigServiceClient;
use gekko_testkit::{RedisServer, free_port};
use sha2::{Digest as _, Sha256};
use tonic::transport::Channel;

const VIEWER: &str = "viewer-token-0123456789";
const ADMIN: &str = "admin-token-0123456789abc";
const SECRET: &str = "binance-secret-value-42";

fn token_entry(name: &str, role: &str, token: &str) -> String {
    format!(
        "{name}:{role}:{}",
        hex::encode(Sha256::digest(token.as_bytes()))
    )
}

fn temp_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "configd-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Writes `text` to `path` by renaming a sibling over it, as editors and
/// `gekko secrets rotate` do.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

struct Configd {
    child: Child,
    grpc: String,
    http: u16,
}

impl Drop for Configd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(env_file: &Path, redis: &str, extra: &[(&str, String)]) -> (Command, u16, u16) {
    let (http, grpc) = (free_port().expect("port"), free_port().expect("port"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_configd"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONFIGD_ENV_FILE", env_file)
        .env("CONFIGD_DEBOUNCE_MS", "100")
        .env("REDIS_URL", redis)
        .env(
            "MONITORING_CONFIGURATIONS",
            format!("http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{grpc}"),
        )
        .env(
            "ACCESS_CONTROL_CONFIG",
            format!(
                "tokens={};{}",
                token_entry("svc-viewer", "viewer", VIEWER),
                token_entry("svc-admin", "admin", ADMIN)
            ),
        )
        .env("AUDIT_LOGGING_SETTINGS", "enabled=false")
        .current_dir(env_file.parent().expect("dir"));
    for (k, v) in extra {
        cmd.env(k, v);
    }
    (cmd, http, grpc)
}

async fn start(env_file: &Path, redis: &str, extra: &[(&str, String)]) -> Configd {
    let (mut cmd, http, grpc) = command(env_file, redis, extra);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn configd");
    let mut d = Configd {
        child,
        grpc: format!("http://127.0.0.1:{grpc}"),
        http,
    };
    let ready = gekko_testkit::eventually(Duration::from_secs(30), || {
        let url = d.grpc.clone();
        async move {
            let Ok(mut c) = ConfigServiceClient::connect(url).await else {
                return false;
            };
            c.get_config(authed(pb::GetConfigRequest::default(), VIEWER))
                .await
                .is_ok()
        }
    })
    .await;
    if !ready {
        let _ = d.child.kill();
        let mut err = String::new();
        if let Some(mut e) = d.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        panic!("configd did not serve within 30 s:\n{err}");
    }
    d
}

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    r
}

async fn client(d: &Configd) -> ConfigServiceClient<Channel> {
    ConfigServiceClient::connect(d.grpc.clone())
        .await
        .expect("connect")
}

fn base_env(limit: &str) -> String {
    format!(
        "SUPPORTED_TRADING_PAIRS=BTC-USD,ETH-USD\nPOSITION_LIMITS=BTC-USD={limit}\n\
         BINANCEUS_API_KEY=binance-key-id-7\nBINANCEUS_API_SECRET={SECRET}\n\
         COMPLIANCE_SETTINGS=max_order_notional=1000\n"
    )
}

async fn next_version(
    watch: &mut tonic::Streaming<pb::ConfigVersion>,
    what: &str,
) -> pb::ConfigVersion {
    tokio::time::timeout(Duration::from_secs(20), watch.message())
        .await
        .unwrap_or_else(|_| panic!("no version on Watch within 20 s: {what}"))
        .expect("stream ok")
        .expect("stream open")
}

/// One `XREVRANGE` entry: its id and field/value pairs.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

fn last_recorded(redis: &str) -> serde_json::Value {
    let client = redis::Client::open(redis).expect("redis url");
    let mut conn = client.get_connection().expect("redis");
    let entries: Vec<StreamEntry> = redis::cmd("XREVRANGE")
        .arg("gekko:config")
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(&mut conn)
        .expect("XREVRANGE");
    let (_, fields) = entries
        .into_iter()
        .next()
        .expect("an entry on gekko:config");
    let payload = fields
        .into_iter()
        .map(|(_, v)| v)
        .next_back()
        .expect("a field");
    serde_json::from_slice(&payload).expect("json payload")
}

/// Subscribes to the `gekko:config` channel (returning once the subscription is active)
/// and hands back the first message, within 20 s.
fn announcement(redis: &str) -> std::thread::JoinHandle<serde_json::Value> {
    let client = redis::Client::open(redis).expect("redis url");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut conn = client.get_connection().expect("redis");
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut sub = conn.as_pubsub();
        sub.subscribe("gekko:config").expect("subscribe");
        ready_tx.send(()).expect("signal");
        let msg = sub.get_message().expect("a message within 20 s");
        let payload: Vec<u8> = msg.get_payload().expect("bytes");
        serde_json::from_slice(&payload).expect("json")
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed");
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_redacted_config_secrets_by_role_validates_and_hot_reloads() {
    let redis = RedisServer::start();
    let dir = temp_dir();
    let env_file = dir.join("gekko.env");
    std::fs::write(&env_file, base_env("2")).expect("write");
    let d = start(&env_file, &redis.url(), &[]).await;
    let mut c = client(&d).await;

    // GetConfig: values present, secrets never.
    let all = c
        .get_config(authed(pb::GetConfigRequest::default(), VIEWER))
        .await
        .expect("viewer reads config")
        .into_inner();
    let v1 = all.version;
    assert_eq!(v1, 1, "first version ever recorded on this Redis");
    let entry = |r: &pb::GetConfigResponse, k: &str| {
        r.entries
            .iter()
            .find(|e| e.variable == k)
            .map(|e| e.value.clone())
    };
    assert_eq!(entry(&all, "POSITION_LIMITS").as_deref(), Some("BTC-USD=2"));
    assert_eq!(
        entry(&all, "BINANCEUS_API_SECRET").as_deref(),
        Some(gekko_config::REDACTED)
    );
    let text = format!("{all:?}");
    assert!(!text.contains(SECRET) && !text.contains(ADMIN), "{text}");
    let one = c
        .get_config(authed(
            pb::GetConfigRequest {
                section: "POSITION_LIMITS".to_owned(),
            },
            VIEWER,
        ))
        .await
        .expect("one section")
        .into_inner();
    assert_eq!(one.entries.len(), 1);
    assert!(one.entries[0].hot);
    let nope = c
        .get_config(authed(
            pb::GetConfigRequest::default(),
            "wrong-token-000000000",
        ))
        .await
        .expect_err("unknown token");
    assert_eq!(nope.code(), tonic::Code::Unauthenticated);

    // GetSecrets: refused for a viewer, given to an admin.
    let want = |venue: &str| pb::GetSecretsRequest {
        venue: venue.to_owned(),
    };
    let refused = c
        .get_secrets(authed(want("binanceus"), VIEWER))
        .await
        .expect_err("viewer");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(!refused.message().contains(SECRET));
    let got = c
        .get_secrets(authed(want("binanceus"), ADMIN))
        .await
        .expect("admin")
        .into_inner();
    let secret = got
        .secrets
        .iter()
        .find(|s| s.name == "BINANCEUS_API_SECRET")
        .map(|s| s.value.as_str());
    assert_eq!(secret, Some(SECRET));
    let none = c
        .get_secrets(authed(want("oanda"), ADMIN))
        .await
        .expect("admin")
        .into_inner();
    assert!(none.secrets.is_empty(), "oanda runs simulated");
    let bad = c
        .get_secrets(authed(want("nasdaq"), ADMIN))
        .await
        .expect_err("unknown venue");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    // Validate: every problem at once, nothing applied.
    let answer = c
        .validate(authed(
            pb::ValidateConfigRequest {
                env_text: "POSITION_LIMITS=DOGE-USD=5\nCOMPLIANCE_SETTINGS=max_order_notional=-1\n\
                           REDIS_URL=http://nope\nBAD LINE\n"
                    .to_owned(),
            },
            VIEWER,
        ))
        .await
        .expect("validate")
        .into_inner();
    assert!(!answer.valid);
    let vars: Vec<&str> = answer
        .problems
        .iter()
        .map(|p| p.variable.as_str())
        .collect();
    assert!(answer.problems.len() >= 3, "{vars:?}");
    assert!(
        vars.contains(&"POSITION_LIMITS") && vars.contains(&"COMPLIANCE_SETTINGS"),
        "{vars:?}"
    );
    let ok = c
        .validate(authed(
            pb::ValidateConfigRequest {
                env_text: base_env("9"),
            },
            VIEWER,
        ))
        .await
        .expect("validate")
        .into_inner();
    assert!(ok.valid, "{:?}", ok.problems);

    // Watch: the current version, then a valid hot change.
    let mut watch = c
        .watch(authed(pb::WatchConfigRequest {}, VIEWER))
        .await
        .expect("watch")
        .into_inner();
    let first = next_version(&mut watch, "current").await;
    assert_eq!((first.version, first.accepted), (v1, true));
    let announced = announcement(&redis.url());
    replace(&env_file, &base_env("3"));
    let v2 = next_version(&mut watch, "valid change").await;
    assert!(v2.accepted, "{v2:?}");
    assert_eq!(v2.version, v1 + 1);
    assert_eq!(v2.changes.len(), 1, "{v2:?}");
    assert_eq!(v2.changes[0].variable, "POSITION_LIMITS");
    assert!(v2.changes[0].hot && !v2.restart_needed);
    let heard = announced.join().expect("subscriber thread");
    assert_eq!(heard["version"], v1 + 1, "announced on pub/sub: {heard}");
    let rec = last_recorded(&redis.url());
    assert_eq!(rec["version"], v1 + 1);
    assert_eq!(rec["values"]["POSITION_LIMITS"], "BTC-USD=3");
    assert!(!rec.to_string().contains(SECRET), "{rec}");

    // An invalid change: rejected with every problem, the old version stays.
    replace(
        &env_file,
        &format!(
            "{}POSITION_LIMITS=DOGE-USD=5\nCOMPLIANCE_SETTINGS=max_order_notional=-1\n",
            base_env("4")
                .replace("POSITION_LIMITS=BTC-USD=4\n", "")
                .replace("COMPLIANCE_SETTINGS=max_order_notional=1000\n", "")
        ),
    );
    let rejected = next_version(&mut watch, "invalid change").await;
    assert!(!rejected.accepted);
    assert_eq!(rejected.version, v1 + 1, "the old version stays in force");
    assert!(rejected.problems.len() >= 2, "{:?}", rejected.problems);
    let now = c
        .get_config(authed(
            pb::GetConfigRequest {
                section: "POSITION_LIMITS".to_owned(),
            },
            VIEWER,
        ))
        .await
        .expect("read")
        .into_inner();
    assert_eq!(now.version, v1 + 1);
    assert_eq!(now.entries[0].value, "BTC-USD=3");
    assert_eq!(last_recorded(&redis.url())["version"], v1 + 1);

    // A change that needs a restart is accepted and says so.
    replace(
        &env_file,
        &base_env("3").replace("BTC-USD,ETH-USD", "BTC-USD,ETH-USD,SOL-USD"),
    );
    let v3 = next_version(&mut watch, "restart-needed change").await;
    assert!(v3.accepted && v3.restart_needed, "{v3:?}");
    assert_eq!(v3.version, v1 + 2);
    assert!(
        v3.changes
            .iter()
            .any(|ch| ch.variable == "SUPPORTED_TRADING_PAIRS" && ch.restart_needed),
        "{v3:?}"
    );

    // Metrics.
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", d.http))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
            .to_owned()
    };
    assert!(line("gekko_config_version ").ends_with(" 3"), "{metrics}");
    assert!(line("gekko_config_restart_needed ").ends_with(" 1"));
    assert!(line("gekko_config_reloads_total{outcome=\"rejected\"}").ends_with(" 1"));
    assert!(line("gekko_config_reloads_total{outcome=\"accepted\"}").ends_with(" 2"));
    drop(d);

    // A restarted configd continues the numbering from gekko:config.
    let d = start(&env_file, &redis.url(), &[]).await;
    let again = client(&d)
        .await
        .get_config(authed(pb::GetConfigRequest::default(), VIEWER))
        .await
        .expect("read")
        .into_inner();
    assert_eq!(again.version, v1 + 3);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_a_sealed_env_file_and_refuses_one_it_cannot_open() {
    let redis = RedisServer::start();
    let dir = temp_dir();
    let key = Key::generate();
    let key_file = dir.join("gekko.key");
    std::fs::write(&key_file, key.to_hex().as_str()).expect("key");
    let env_file = dir.join("gekko.env.sealed");
    let sealed = seal(&base_env("2"), &key);
    std::fs::write(&env_file, &sealed).expect("write");
    let with_key = [(
        "ENCRYPTION_SETTINGS",
        format!("key_file={}", key_file.display()),
    )];
    let d = start(&env_file, &redis.url(), &with_key).await;
    let mut c = client(&d).await;
    let got = c
        .get_secrets(authed(
            pb::GetSecretsRequest {
                venue: "binanceus".to_owned(),
            },
            ADMIN,
        ))
        .await
        .expect("admin")
        .into_inner();
    assert!(got.secrets.iter().any(|s| s.value == SECRET));
    // A sealed edit is reloaded too.
    let mut watch = c
        .watch(authed(pb::WatchConfigRequest {}, VIEWER))
        .await
        .expect("watch")
        .into_inner();
    let first = next_version(&mut watch, "current").await;
    replace(&env_file, &seal(&base_env("5"), &key));
    let next = next_version(&mut watch, "sealed change").await;
    assert_eq!((next.version, next.accepted), (first.version + 1, true));
    // A tampered replacement is rejected; the old version stays.
    let mut bad = seal(&base_env("6"), &key).into_bytes();
    let at = bad.len() - 10;
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    replace(&env_file, std::str::from_utf8(&bad).expect("ascii"));
    let rejected = next_version(&mut watch, "tampered change").await;
    assert!(!rejected.accepted);
    assert!(
        rejected
            .problems
            .iter()
            .any(|p| p.problem.contains("tampered")),
        "{:?}",
        rejected.problems
    );
    drop(d);

    // Started with the wrong key, or on a tampered file: exit 64, nothing served, no value
    // shown.
    let wrong_key_file = dir.join("other.key");
    std::fs::write(&wrong_key_file, Key::generate().to_hex().as_str()).expect("key");
    for (file, key_file, want) in [
        (env_file.clone(), wrong_key_file, "wrong key"),
        (
            env_file.clone(),
            PathBuf::from("/nonexistent/key"),
            "cannot read key file",
        ),
    ] {
        std::fs::write(&file, &sealed).expect("write");
        let (mut cmd, _, _) = command(
            &file,
            &redis.url(),
            &[(
                "ENCRYPTION_SETTINGS",
                format!("key_file={}", key_file.display()),
            )],
        );
        let out = cmd.output().expect("run configd");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{err}");
        assert!(err.contains(want), "{err}");
        assert!(!err.contains(SECRET), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Every entry of `stream`, as parsed audit entries and as their stored text.
fn audit_entries(redis: &str, stream: &str) -> Vec<(gekko_audit::Entry, String)> {
    let client = redis::Client::open(redis).expect("redis url");
    let mut conn = client.get_connection().expect("redis");
    let entries: Vec<StreamEntry> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .expect("XRANGE");
    entries
        .into_iter()
        .map(|(_, fields)| {
            let payload = fields
                .into_iter()
                .map(|(_, v)| v)
                .next_back()
                .expect("a field");
            let text = String::from_utf8(payload).expect("utf-8 entry");
            (
                gekko_audit::Entry::parse(text.as_bytes()).expect("an audit entry"),
                text,
            )
        })
        .collect()
}

/// A new config version is audited as `config.change` on configd's own stream, naming the
/// changed variables with redacted old and new values (no secret value, old or new),
/// `GetSecrets` as `secret.access`, and the chain verifies under the key. `GetSecrets`
/// takes a second factor from a token configured with a TOTP secret (none: UNAUTHENTICATED;
/// a current code: the secrets), while a service token without one is not asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_and_secret_access_are_audited_and_secrets_take_a_second_factor() {
    const NEW_SECRET: &str = "binance-secret-rotated-77";
    const PERSON: &str = "person-admin-token-0123456789";
    const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let redis = RedisServer::start();
    let dir = temp_dir();
    let env_file = dir.join("gekko.env");
    std::fs::write(&env_file, base_env("2")).expect("write");
    let audit_key = [7u8; 32];
    let archive = dir.join("audit-archive");
    let extra = [
        (
            "AUDIT_LOGGING_SETTINGS",
            format!(
                "enabled=true,key={},archive_dir={}",
                hex::encode(audit_key),
                archive.display()
            ),
        ),
        (
            "ACCESS_CONTROL_CONFIG",
            format!(
                "tokens={};{};{}:totp={TOTP_SECRET}",
                token_entry("svc-viewer", "viewer", VIEWER),
                token_entry("svc-admin", "admin", ADMIN),
                token_entry("ops", "admin", PERSON),
            ),
        ),
    ];
    let d = start(&env_file, &redis.url(), &extra).await;
    let mut c = client(&d).await;
    let want = || pb::GetSecretsRequest {
        venue: "binanceus".to_owned(),
    };

    // The second factor: asked of the person's token, not of the service's.
    let no_code = c
        .get_secrets(authed(want(), PERSON))
        .await
        .expect_err("a TOTP token without a code");
    assert_eq!(no_code.code(), tonic::Code::Unauthenticated, "{no_code:?}");
    assert!(no_code.message().contains("TOTP"), "{no_code:?}");
    let code = gekko_security::Totp::from_base32(TOTP_SECRET)
        .expect("base32")
        .code_now();
    let mut with_code = authed(want(), PERSON);
    with_code
        .metadata_mut()
        .insert("x-gekko-totp", code.parse().expect("ascii"));
    let got = c
        .get_secrets(with_code)
        .await
        .expect("a current code")
        .into_inner();
    assert!(got.secrets.iter().any(|s| s.value == SECRET));
    let svc = c
        .get_secrets(authed(want(), ADMIN))
        .await
        .expect("a service token without totp= is not asked for a code")
        .into_inner();
    assert!(svc.secrets.iter().any(|s| s.value == SECRET));

    // A change of a plain and of a secret variable.
    let mut watch = c
        .watch(authed(pb::WatchConfigRequest {}, VIEWER))
        .await
        .expect("watch")
        .into_inner();
    let first = next_version(&mut watch, "current").await;
    replace(&env_file, &base_env("3").replace(SECRET, NEW_SECRET));
    let next = next_version(&mut watch, "valid change").await;
    assert!(next.accepted, "{next:?}");

    let stream = "gekko:audit:configd";
    let url = redis.url();
    let entries = {
        let mut last = Vec::new();
        for _ in 0..100 {
            last = audit_entries(&url, stream);
            let access = last
                .iter()
                .filter(|(e, _)| e.action == "secret.access")
                .count();
            // The secret.access records are queued (written in order by the audit
            // writer); wait for both.
            if access >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last
    };
    for (_, text) in &entries {
        for secret in [SECRET, NEW_SECRET, ADMIN, PERSON, TOTP_SECRET] {
            assert!(
                !text.contains(secret),
                "a secret in the audit trail: {text}"
            );
        }
    }
    let changes: Vec<&gekko_audit::Entry> = entries
        .iter()
        .map(|(e, _)| e)
        .filter(|e| e.action == "config.change")
        .collect();
    assert_eq!(changes.len(), 2, "start and one reload: {entries:?}");
    assert_eq!(changes[0].detail["cause"], "start");
    assert_eq!(changes[0].detail["version"], first.version);
    let reload = changes[1];
    assert_eq!(
        (reload.actor.as_str(), reload.outcome.as_str()),
        ("configd", "ok")
    );
    assert_eq!(reload.detail["cause"], "reload");
    assert_eq!(reload.detail["version"], next.version);
    assert_eq!(
        reload.detail["variables"],
        serde_json::json!(["BINANCEUS_API_SECRET", "POSITION_LIMITS"]),
        "{}",
        reload.detail
    );
    let change = |v: &str| {
        reload.detail["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .find(|c| c["variable"] == v)
            .cloned()
            .unwrap_or_else(|| panic!("{v} not in {}", reload.detail))
    };
    let limits = change("POSITION_LIMITS");
    assert_eq!(
        (&limits["old"], &limits["new"]),
        (&"BTC-USD=2".into(), &"BTC-USD=3".into())
    );
    let secret = change("BINANCEUS_API_SECRET");
    assert_eq!(secret["old"], gekko_config::REDACTED);
    assert_eq!(secret["new"], gekko_config::REDACTED);
    let access: Vec<&str> = entries
        .iter()
        .filter(|(e, _)| e.action == "secret.access")
        .map(|(e, _)| e.actor.as_str())
        .collect();
    assert_eq!(access, ["ops", "svc-admin"], "{entries:?}");

    // The chain verifies under the configured key.
    let bus = gekko_bus::RedisBus::connect(&url, gekko_bus::RedisBusOptions::default())
        .await
        .expect("bus");
    let report = gekko_audit::verify(
        &bus,
        &gekko_audit::AuditKey::from_secret(&audit_key),
        stream,
        &archive,
    )
    .await
    .expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries, u64::try_from(entries.len()).expect("len"));
    drop(d);
    std::fs::remove_dir_all(&dir).ok();
}

/// Live mode cannot run on the paper token that docker-compose.yml defaults configd's
/// `ACCESS_CONTROL_CONFIG` to: with credentials for the real venue (no endpoint
/// override), `GetSecrets` with that committed token is PERMISSION_DENIED naming
/// `GEKKO_CONFIGD_ACCESS`, and no value is shown; a token of one's own gets them. With the
/// simulator's endpoints (the paper stack) the paper token keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_credentials_are_refused_to_the_committed_paper_token() {
    let paper = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/compose/paper/configd.token"
    ))
    .expect("the committed paper token");
    let paper = paper.trim();
    let hash = hex::encode(Sha256::digest(paper.as_bytes()));
    assert_eq!(
        hash,
        configd::grpc::PAPER_TOKEN_SHA256,
        "configd's constant is the hash of deploy/compose/paper/configd.token"
    );
    let compose = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docker-compose.yml"
    ))
    .expect("docker-compose.yml");
    assert!(
        compose.contains(&format!("gateways:admin:{hash}")),
        "docker-compose.yml's configd default is that token"
    );

    let redis = RedisServer::start();
    let dir = temp_dir();
    let env_file = dir.join("gekko.env");
    let access = [(
        "ACCESS_CONTROL_CONFIG",
        format!(
            "tokens=gateways:admin:{hash};{};{}",
            token_entry("svc-viewer", "viewer", VIEWER),
            token_entry("own", "admin", ADMIN)
        ),
    )];
    let want = || pb::GetSecretsRequest {
        venue: "binanceus".to_owned(),
    };

    // Live: the real venue's default endpoint.
    std::fs::write(&env_file, base_env("2")).expect("write");
    let d = start(&env_file, &redis.url(), &access).await;
    let mut c = client(&d).await;
    let refused = c
        .get_secrets(authed(want(), paper))
        .await
        .expect_err("live credentials to the paper token");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("GEKKO_CONFIGD_ACCESS")
            && refused.message().contains("paper token"),
        "{refused:?}"
    );
    assert!(!refused.message().contains(SECRET));
    let own = c
        .get_secrets(authed(want(), ADMIN))
        .await
        .expect("a token of one's own")
        .into_inner();
    assert!(own.secrets.iter().any(|s| s.value == SECRET));
    drop(d);

    // Live on an explicit public host: still live.
    std::fs::write(
        &env_file,
        format!(
            "{}TRADING_API_ENDPOINTS=binanceus=https://api.binance.us\n",
            base_env("2")
        ),
    )
    .expect("write");
    let d = start(&env_file, &redis.url(), &access).await;
    let again = client(&d)
        .await
        .get_secrets(authed(want(), paper))
        .await
        .expect_err("still the real venue");
    assert_eq!(again.code(), tonic::Code::PermissionDenied, "{again:?}");
    drop(d);

    // Paper: the simulator's endpoints, as deploy/compose/configd.env has them.
    std::fs::write(
        &env_file,
        format!(
            "{}TRADING_API_ENDPOINTS=binanceus=http://sim-binanceus:9100,binanceus.stream=ws://sim-binanceus:9101\n",
            base_env("2")
        ),
    )
    .expect("write");
    let d = start(&env_file, &redis.url(), &access).await;
    let got = client(&d)
        .await
        .get_secrets(authed(want(), paper))
        .await
        .expect("the paper stack keeps working")
        .into_inner();
    assert!(got.secrets.iter().any(|s| s.value == SECRET));
    drop(d);
    std::fs::remove_dir_all(&dir).ok();
}
