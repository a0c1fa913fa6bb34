//! The host's side of access control: TLS material is checked before anything binds (a
//! bad file exits 64 naming it), and every refused gRPC call becomes an `auth.denied`
//! entry in the process's audit trail.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use gekko_config::{GekkoConfig, Loaded};
use gekko_proto::v1::GetStatusRequest;
use gekko_proto::v1::system_service_client::SystemServiceClient;
use gekko_runtime::{BoxError, Exit, Host, HostInfo, Lifecycle, Service, ServiceCtx, Started};
use gekko_security::ClientAuth;

mod support;
use support::TestSystem;

const AUDIT_KEY: [u8; 32] = [7; 32];

fn free_port() -> u16 {
    gekko_testkit::free_port().expect("free port")
}

fn loaded(pairs: &[(&str, String)]) -> Loaded {
    let vars: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    match gekko_config::from_vars(&vars) {
        Ok(l) => l,
        Err(e) => panic!("bad test config: {e}"),
    }
}

static CTX: OnceLock<ServiceCtx> = OnceLock::new();

/// Serves `SystemService` and leaves its context for the test to request a stop.
struct Svc;

impl Service for Svc {
    const NAME: &'static str = "svc";
    type Settings = ();

    fn resolve(_: &GekkoConfig) -> Result<(), Vec<String>> {
        Ok(())
    }

    async fn start((): (), ctx: &ServiceCtx) -> Result<Started, BoxError> {
        let _ = CTX.set(ctx.clone());
        Ok(Started::new().grpc(TestSystem::plain().into_server()))
    }
}

/// Once serving: makes a refused call, waits for its audit entry, then stops the host.
#[derive(Default)]
struct Probe {
    found: Mutex<Option<serde_json::Value>>,
}

impl Lifecycle for Probe {
    async fn started(&self, info: &HostInfo<'_>) {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", info.grpc_addr))
            .unwrap()
            .connect()
            .await
            .expect("connect");
        let auth = ClientAuth::new(Some("gk_not-a-token")).unwrap();
        let e = SystemServiceClient::with_interceptor(channel, auth)
            .get_status(GetStatusRequest {})
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);

        let stream = info.audit.stream().expect("audit enabled").to_owned();
        let key = gekko_audit::AuditKey::from_secret(&AUDIT_KEY);
        let found = gekko_testkit::poll_some(
            "the auth.denied audit entry",
            Duration::from_secs(10),
            || {
                let stream = stream.clone();
                let key = &key;
                async move {
                    let mut out = Vec::new();
                    let dir = info.config.audit_logging.archive_dir.clone();
                    let (report, _) =
                        gekko_audit::export(info.bus, key, &stream, &dir, 0, &mut out)
                            .await
                            .ok()?;
                    assert!(report.is_intact(), "{report:?}");
                    String::from_utf8(out).ok()?.lines().find_map(|l| {
                        let v: serde_json::Value = serde_json::from_str(l).ok()?;
                        (v["action"] == "auth.denied").then_some(v)
                    })
                }
            },
        )
        .await;
        *self.found.lock().unwrap() = Some(found);
        assert!(
            CTX.get()
                .expect("service started")
                .request_stop(None, "test".to_owned())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_calls_are_audited() {
    let dir = std::env::temp_dir().join(format!("gekko-security-host-{}", std::process::id()));
    let token = gekko_security::generate_token("ops", gekko_security::Role::Admin, false);
    let hex: String = AUDIT_KEY.iter().map(|b| format!("{b:02x}")).collect();
    let loaded = loaded(&[
        (
            "MONITORING_CONFIGURATIONS",
            format!(
                "http_addr=127.0.0.1:{},grpc_addr=127.0.0.1:{},log_format=json",
                free_port(),
                free_port()
            ),
        ),
        (
            "ACCESS_CONTROL_CONFIG",
            format!("tokens={}", token.config_entry()),
        ),
        (
            "AUDIT_LOGGING_SETTINGS",
            format!("key={hex},archive_dir={}", dir.display()),
        ),
    ]);
    let probe = Probe::default();
    let exit = Host::new("security-host-test")
        .service::<Svc>()
        .run(loaded, &probe)
        .await;
    assert_eq!(exit, Exit::Ok);
    let entry = probe.found.lock().unwrap().take().expect("found");
    assert_eq!(entry["outcome"], "denied");
    assert_eq!(
        entry["actor"], "127.0.0.1",
        "no token name: the peer is the actor"
    );
    assert_eq!(entry["detail"]["reason"], "invalid_token");
    assert_eq!(
        entry["detail"]["method"],
        "/gekko.v1.SystemService/GetStatus"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_bad_tls_file_exits_64_before_binding() {
    let grpc = free_port();
    let loaded = loaded(&[
        (
            "MONITORING_CONFIGURATIONS",
            format!(
                "http_addr=127.0.0.1:{},grpc_addr=127.0.0.1:{grpc}",
                free_port()
            ),
        ),
        (
            "ACCESS_CONTROL_CONFIG",
            "tls_cert=/nonexistent/gekko/server.pem,tls_key=/nonexistent/gekko/server.key"
                .to_owned(),
        ),
    ]);
    let exit = Host::new("security-tls-test").run(loaded, &()).await;
    assert_eq!(exit, Exit::Config);
    // Nothing was bound.
    std::net::TcpListener::bind(("127.0.0.1", grpc)).expect("the gRPC port is still free");
}
