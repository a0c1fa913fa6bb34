//! Tokens, TOTP secrets and codes, and TLS private keys never reach the logs.
//!
//! Every log line (at `trace`, so tonic, h2, hyper and rustls lines too) of a TLS server
//! with auth on is captured into a buffer while clients make authenticated, refused,
//! second-factor and replayed calls, and while the error paths run: a bad key file, bad
//! token entries, the deprecated token's warning and the config's `Debug` (which the host
//! logs at start-up). None of the secrets may appear; the refusals must (by name and
//! reason), which shows the capture works.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gekko_proto::v1::system_service_client::SystemServiceClient;
use gekko_proto::v1::{GetStatusRequest, ShutdownRequest};
use gekko_runtime::{GrpcServer, Readiness};
use gekko_security::{
    AuthLayer, AuthPolicy, ClientAuth, ClientTls, Role, ServerTls, Totp, certs, generate_token,
};
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::fmt::MakeWriter;

mod support;
use support::TestSystem;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Self;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_secret_appears_in_any_log_line() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buffer.clone())
        .with_ansi(false)
        .finish();
    // Thread-local: the current-thread runtime runs the server, its handshakes and the
    // clients on this thread, so every line lands here.
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = std::env::temp_dir().join(format!("gekko-security-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = certs::dev_certs(&dir).expect("dev certs");
    let key_pem = std::fs::read_to_string(&files.server_key).unwrap();
    let key_body: Vec<String> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(str::to_owned)
        .collect();
    assert!(!key_body.is_empty());

    let viewer = generate_token("dash", Role::Viewer, false);
    let admin = generate_token("ops", Role::Admin, true);
    let totp_secret = admin
        .totp_secret
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    let legacy = "legacy-token-0123456789-abcdef";
    let config = format!(
        "tokens={};{},grpc_auth_token={legacy},tls_cert={},tls_key={},tls_client_ca={}",
        viewer.config_entry(),
        admin.config_entry(),
        files.server_cert.display(),
        files.server_key.display(),
        files.ca_cert.display()
    );
    let vars = BTreeMap::from([("ACCESS_CONTROL_CONFIG".to_owned(), config)]);
    let loaded = gekko_config::from_vars(&vars).expect("valid");
    // What the host logs at start-up.
    loaded.log_warnings();
    tracing::info!(config = ?loaded.config, "starting");
    let access = &loaded.config.access_control;
    let tls = ServerTls::load(access).unwrap().expect("tls configured");
    tracing::info!(?tls, policy = ?AuthPolicy::from_config(access).unwrap(), "security");

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let token = CancellationToken::new();
    let server = tokio::spawn(
        GrpcServer::new(Readiness::new())
            .with_auth(AuthLayer::new(AuthPolicy::from_config(access).unwrap()))
            .with_tls(&tls)
            .add_service(TestSystem::plain().into_server())
            .serve(listener, token.clone()),
    );
    let client_tls = ClientTls::from_files(
        &files.ca_cert,
        Some((&files.client_cert, &files.client_key)),
    )
    .unwrap();
    tracing::info!(?client_tls, "client");
    let channel = gekko_security::connect(&format!("https://localhost:{port}"), Some(&client_tls))
        .await
        .expect("mTLS connect");
    let call = |auth: ClientAuth| {
        let channel = channel.clone();
        async move {
            tracing::info!(?auth, "calling");
            let mut c = SystemServiceClient::with_interceptor(channel, auth);
            let status = c.get_status(GetStatusRequest {}).await.map(|_| ());
            let shutdown = c.shutdown(ShutdownRequest::default()).await.map(|_| ());
            (status, shutdown)
        }
    };
    let totp = Totp::from_base32(&totp_secret).unwrap();
    let code = totp.code_now();
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 7) % 1_000_000);
    let vt = viewer.token.expose_secret();
    let at = admin.token.expose_secret();
    assert!(call(ClientAuth::new(None).unwrap()).await.0.is_err());
    assert!(
        call(ClientAuth::new(Some("gk_wrong-guess")).unwrap())
            .await
            .0
            .is_err()
    );
    let (s, d) = call(ClientAuth::new(Some(vt)).unwrap()).await;
    assert!(s.is_ok() && d.is_err());
    assert!(
        call(
            ClientAuth::new(Some(at))
                .unwrap()
                .with_totp(&wrong)
                .unwrap()
        )
        .await
        .1
        .is_err()
    );
    assert!(
        call(ClientAuth::new(Some(at)).unwrap().with_totp(&code).unwrap())
            .await
            .1
            .is_ok()
    );
    assert!(
        call(ClientAuth::new(Some(at)).unwrap().with_totp(&code).unwrap())
            .await
            .1
            .is_err()
    );
    assert!(call(ClientAuth::new(Some(legacy)).unwrap()).await.1.is_ok());

    // Error paths: a key file holding a secret-looking body, malformed token entries.
    let junk = dir.join("junk.key");
    std::fs::write(
        &junk,
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            key_body[0]
        ),
    )
    .unwrap();
    let e = ServerTls::from_files(&files.server_cert, &junk, None).unwrap_err();
    tracing::error!(error = %e, debug = ?e, "tls failed");
    let bad = BTreeMap::from([(
        "ACCESS_CONTROL_CONFIG".to_owned(),
        format!(
            "tokens=x:admin:{}:totp={}!;{vt}",
            "0".repeat(64),
            totp_secret
        ),
    )]);
    let e = gekko_config::from_vars(&bad).unwrap_err();
    tracing::error!(error = %e, debug = ?e, "config failed");

    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    let _ = std::fs::remove_dir_all(&dir);

    let logs = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    assert!(logs.contains("gRPC call refused"), "the capture works");
    for needle in [
        "invalid_token",
        "missing_token",
        "role_too_low",
        "totp_invalid",
        "totp_replayed",
    ] {
        assert!(logs.contains(needle), "refusal {needle} not logged");
    }
    let mut secrets = vec![
        ("viewer token", vt.to_owned()),
        ("admin token", at.to_owned()),
        ("legacy token", legacy.to_owned()),
        ("wrong token", "gk_wrong-guess".to_owned()),
        ("TOTP secret", totp_secret.clone()),
    ];
    secrets.extend(key_body.iter().map(|l| ("TLS key", l.clone())));
    for (what, secret) in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{what} leaked into the logs"
        );
    }
    // Codes are six digits, which can occur by chance in numbers; they must not appear on
    // any line that is about TOTP or headers.
    for line in logs.lines() {
        let lower = line.to_ascii_lowercase();
        if lower.contains("totp") || lower.contains("header") || lower.contains("metadata") {
            assert!(
                !line.contains(&code) && !line.contains(&wrong),
                "a TOTP code leaked: {line}"
            );
        }
    }
}
