//! Access control and TLS through the real `GrpcServer`, over real TCP, with tonic clients.
//!
//! Every server here is built from an `ACCESS_CONTROL_CONFIG` string through the real
//! config loader, so the parsing, the `AuthLayer` that `GrpcServer::serve` puts around the
//! whole router, and the TLS acceptors are all covered together.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_proto::v1::gateway_service_server::{GatewayService, GatewayServiceServer};
use gekko_proto::v1::system_service_client::SystemServiceClient;
use gekko_proto::v1::{
    CancelAllOrdersRequest, CancelAllOrdersResponse, CancelOrderRequest, ClosePositionsRequest,
    ClosePositionsResponse, GetAccountRequest, GetAccountResponse, GetInstrumentsRequest,
    GetInstrumentsResponse, GetOrderRequest, GetStatusRequest, GetStatusResponse,
    ListOpenOrdersRequest, ListOpenOrdersResponse, OrderMsg, OrderReply, PlaceOrderRequest,
    QuoteUpdate, SetTradingEnabledRequest, SetTradingEnabledResponse, ShutdownRequest,
    ShutdownResponse, StreamQuotesRequest,
};
use gekko_runtime::{GrpcServer, Readiness, serve_https};
use gekko_security::{
    AuthLayer, AuthPolicy, Caller, ClientAuth, ClientTls, DeniedCall, DenyReason, ServerTls, Totp,
    certs, generate_token,
};
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

mod support;
use support::TestSystem;

/// "12345678901234567890" in base32 (the RFC 6238 test secret).
const TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A gateway whose `PlaceOrder` answers with the caller the layer recorded; every other
/// method is never reached by these tests.
struct EchoGateway;

fn caller_name<T>(req: &Request<T>) -> String {
    Caller::of(req).map_or_else(|| "<none>".to_owned(), |c| format!("{}/{}", c.name, c.role))
}

#[tonic::async_trait]
impl GatewayService for EchoGateway {
    async fn get_quote(
        &self,
        _: tonic::Request<gekko_proto::v1::GetQuoteRequest>,
    ) -> Result<tonic::Response<gekko_proto::v1::QuoteUpdate>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "not served by this test server",
        ))
    }
    async fn get_order_book(
        &self,
        _: tonic::Request<gekko_proto::v1::GetOrderBookRequest>,
    ) -> Result<tonic::Response<gekko_proto::v1::GetOrderBookResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "not served by this test server",
        ))
    }
    async fn get_account(
        &self,
        _: Request<GetAccountRequest>,
    ) -> Result<Response<GetAccountResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn get_instruments(
        &self,
        _: Request<GetInstrumentsRequest>,
    ) -> Result<Response<GetInstrumentsResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn place_order(
        &self,
        req: Request<PlaceOrderRequest>,
    ) -> Result<Response<OrderReply>, Status> {
        Ok(Response::new(OrderReply {
            order: Some(OrderMsg {
                client_order_id: caller_name(&req),
                ..OrderMsg::default()
            }),
        }))
    }
    async fn cancel_order(
        &self,
        _: Request<CancelOrderRequest>,
    ) -> Result<Response<OrderReply>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn cancel_all_orders(
        &self,
        _: Request<CancelAllOrdersRequest>,
    ) -> Result<Response<CancelAllOrdersResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn get_order(&self, _: Request<GetOrderRequest>) -> Result<Response<OrderReply>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn list_open_orders(
        &self,
        _: Request<ListOpenOrdersRequest>,
    ) -> Result<Response<ListOpenOrdersResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn close_positions(
        &self,
        _: Request<ClosePositionsRequest>,
    ) -> Result<Response<ClosePositionsResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    type StreamQuotesStream = tokio_stream::Empty<Result<QuoteUpdate, Status>>;
    async fn stream_quotes(
        &self,
        _: Request<StreamQuotesRequest>,
    ) -> Result<Response<Self::StreamQuotesStream>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn set_trading_enabled(
        &self,
        _: Request<SetTradingEnabledRequest>,
    ) -> Result<Response<SetTradingEnabledResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
}

/// Tokens for the tests: (name, role, token).
struct Tokens {
    viewer: String,
    trader: String,
    admin: String,
    admin2fa: String,
    config: String,
}

fn tokens() -> Tokens {
    let viewer = generate_token("dash", gekko_security::Role::Viewer, false);
    let trader = generate_token("bot", gekko_security::Role::Trader, false);
    let admin = generate_token("ops", gekko_security::Role::Admin, false);
    let admin2fa = generate_token("boss", gekko_security::Role::Admin, false);
    let config = format!(
        "tokens={};{};{};{}:totp={TOTP_SECRET}",
        viewer.config_entry(),
        trader.config_entry(),
        admin.config_entry(),
        admin2fa.config_entry()
    );
    Tokens {
        viewer: viewer.token.expose_secret().to_owned(),
        trader: trader.token.expose_secret().to_owned(),
        admin: admin.token.expose_secret().to_owned(),
        admin2fa: admin2fa.token.expose_secret().to_owned(),
        config,
    }
}

fn access(config: &str) -> gekko_config::AccessControl {
    let vars = BTreeMap::from([("ACCESS_CONTROL_CONFIG".to_owned(), config.to_owned())]);
    match gekko_config::from_vars(&vars) {
        Ok(l) => l.config.access_control,
        Err(e) => panic!("bad test config: {e}"),
    }
}

struct Served {
    addr: SocketAddr,
    token: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), gekko_runtime::RuntimeError>>,
}

impl Served {
    async fn stop(self) {
        self.token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

async fn serve(auth: AuthLayer, tls: Option<&ServerTls>) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let readiness = Readiness::new();
    let mut server = GrpcServer::new(readiness)
        .with_auth(auth)
        .add_service(GatewayServiceServer::new(EchoGateway))
        .add_service(
            // `GetStatus` (viewer) and `Shutdown` (admin, second factor) report the caller.
            TestSystem::new(|req| GetStatusResponse {
                ready: true,
                version: caller_name(req),
                ..GetStatusResponse::default()
            })
            .answering_shutdown(ShutdownResponse {
                accepted: true,
                ..ShutdownResponse::default()
            })
            .into_server(),
        );
    if let Some(tls) = tls {
        server = server.with_tls(tls);
    }
    let token = CancellationToken::new();
    let task = tokio::spawn(server.serve(listener, token.clone()));
    Served { addr, token, task }
}

async fn plain_channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

type Gw = GatewayServiceClient<InterceptedService<Channel, ClientAuth>>;
type Sys = SystemServiceClient<InterceptedService<Channel, ClientAuth>>;

fn gateway(channel: &Channel, auth: ClientAuth) -> Gw {
    GatewayServiceClient::with_interceptor(channel.clone(), auth)
}

fn system(channel: &Channel, auth: ClientAuth) -> Sys {
    SystemServiceClient::with_interceptor(channel.clone(), auth)
}

fn bearer(token: &str) -> ClientAuth {
    ClientAuth::new(Some(token)).expect("ascii token")
}

fn nobody() -> ClientAuth {
    ClientAuth::new(None).expect("no token")
}

fn order() -> PlaceOrderRequest {
    PlaceOrderRequest {
        instrument: "BTC-USD".to_owned(),
        qty: "1".to_owned(),
        ..PlaceOrderRequest::default()
    }
}

async fn place(channel: &Channel, auth: ClientAuth) -> Result<String, Status> {
    gateway(channel, auth).place_order(order()).await.map(|r| {
        r.into_inner()
            .order
            .map(|o| o.client_order_id)
            .unwrap_or_default()
    })
}

async fn status(channel: &Channel, auth: ClientAuth) -> Result<String, Status> {
    system(channel, auth)
        .get_status(GetStatusRequest {})
        .await
        .map(|r| r.into_inner().version)
}

async fn shutdown(channel: &Channel, auth: ClientAuth) -> Result<bool, Status> {
    system(channel, auth)
        .shutdown(ShutdownRequest::default())
        .await
        .map(|r| r.into_inner().accepted)
}

async fn health(channel: &Channel, auth: ClientAuth) -> Result<i32, Status> {
    HealthClient::with_interceptor(channel.clone(), auth)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
}

fn policy(config: &str) -> AuthPolicy {
    AuthPolicy::from_config(&access(config)).expect("policy")
}

#[tokio::test]
async fn no_token_wrong_token_and_roles() {
    let t = tokens();
    let served = serve(AuthLayer::new(policy(&t.config)), None).await;
    let ch = plain_channel(served.addr).await;

    let e = status(&ch, nobody()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = place(&ch, bearer("gk_not-a-real-token")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    // A viewer reads but may not trade.
    assert_eq!(status(&ch, bearer(&t.viewer)).await.unwrap(), "dash/viewer");
    let e = place(&ch, bearer(&t.viewer)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("needs role trader"), "{}", e.message());

    // A trader's PlaceOrder passes the layer and the handler sees who called.
    assert_eq!(place(&ch, bearer(&t.trader)).await.unwrap(), "bot/trader");
    // A trader may not shut down; an admin without a TOTP secret may.
    let e = shutdown(&ch, bearer(&t.trader)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(shutdown(&ch, bearer(&t.admin)).await.unwrap());
    served.stop().await;
}

#[tokio::test]
async fn auth_off_lets_calls_through_as_anonymous() {
    let served = serve(AuthLayer::default(), None).await;
    let ch = plain_channel(served.addr).await;
    assert_eq!(place(&ch, nobody()).await.unwrap(), "anonymous/admin");
    served.stop().await;
}

#[tokio::test]
async fn read_only_refuses_state_changing_calls() {
    let t = tokens();
    let served = serve(
        AuthLayer::new(policy(&format!("{},read_only=true", t.config))),
        None,
    )
    .await;
    let ch = plain_channel(served.addr).await;
    for e in [
        place(&ch, bearer(&t.admin)).await.unwrap_err(),
        shutdown(&ch, bearer(&t.admin)).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert!(e.message().contains("read-only"), "{}", e.message());
    }
    assert_eq!(status(&ch, bearer(&t.viewer)).await.unwrap(), "dash/viewer");
    // Without a valid token the answer is about the token, not the mode.
    let e = place(&ch, nobody()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    served.stop().await;

    // Also with auth off.
    let served = serve(AuthLayer::new(policy("read_only=true")), None).await;
    let ch = plain_channel(served.addr).await;
    assert_eq!(
        place(&ch, nobody()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    served.stop().await;
}

#[tokio::test]
async fn totp_is_required_accepted_once_and_replays_are_refused() {
    let t = tokens();
    let served = serve(AuthLayer::new(policy(&t.config)), None).await;
    let ch = plain_channel(served.addr).await;
    let totp = Totp::from_base32(TOTP_SECRET).unwrap();

    // Without a code.
    let e = shutdown(&ch, bearer(&t.admin2fa)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(
        e.message().contains("TOTP code is required"),
        "{}",
        e.message()
    );
    // A wrong code.
    let now = totp.code_now();
    let wrong = format!("{:06}", (now.parse::<u32>().unwrap() + 1) % 1_000_000);
    let e = shutdown(&ch, bearer(&t.admin2fa).with_totp(&wrong).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    // The current code, once.
    let code = totp.code_now();
    assert!(
        shutdown(&ch, bearer(&t.admin2fa).with_totp(&code).unwrap())
            .await
            .unwrap()
    );
    let e = shutdown(&ch, bearer(&t.admin2fa).with_totp(&code).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("already used"), "{}", e.message());
    // Methods without a second factor need no code.
    assert_eq!(place(&ch, bearer(&t.admin2fa)).await.unwrap(), "boss/admin");
    served.stop().await;
}

#[tokio::test]
async fn failures_are_rate_limited_per_peer_counted_and_observed() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // The server runs on this test's thread (current-thread runtime), so the local
    // recorder sees its counters.
    let _guard = metrics::set_default_local_recorder(&recorder);

    let t = tokens();
    let seen: Arc<Mutex<Vec<DeniedCall>>> = Arc::default();
    let sink = seen.clone();
    let policy = policy(&format!("{},auth_failures_per_minute=3", t.config))
        .with_failure_window(Duration::from_secs(2));
    let auth = AuthLayer::new(policy);
    assert!(auth.observe(move |d: &DeniedCall| sink.lock().unwrap().push(d.clone())));
    let served = serve(auth, None).await;
    let ch = plain_channel(served.addr).await;

    for _ in 0..3 {
        let e = status(&ch, bearer("gk_guess")).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    // The budget is spent: even the right token is not looked at.
    let e = status(&ch, bearer(&t.viewer)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    // Until the window passes.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(status(&ch, bearer(&t.viewer)).await.unwrap(), "dash/viewer");
    // A role too low is refused but is not a guess: it does not spend the budget.
    for _ in 0..5 {
        let e = place(&ch, bearer(&t.viewer)).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
    }
    assert_eq!(status(&ch, bearer(&t.viewer)).await.unwrap(), "dash/viewer");

    let seen = seen.lock().unwrap().clone();
    let reasons: Vec<DenyReason> = seen.iter().map(|d| d.reason).collect();
    assert_eq!(
        reasons[..4],
        [DenyReason::InvalidToken; 3]
            .iter()
            .copied()
            .chain([DenyReason::RateLimited])
            .collect::<Vec<_>>()[..]
    );
    assert!(seen.iter().all(|d| d.peer == Some([127, 0, 0, 1].into())));
    let low = seen.last().unwrap();
    assert_eq!(low.reason, DenyReason::RoleTooLow);
    assert_eq!(low.token_name.as_deref(), Some("dash"));
    assert_eq!(low.method, "/gekko.v1.GatewayService/PlaceOrder");

    let text = handle.render();
    for (reason, n) in [
        ("invalid_token", 3),
        ("rate_limited", 1),
        ("role_too_low", 5),
    ] {
        let line = format!("gekko_auth_failures_total{{reason=\"{reason}\"}} {n}");
        assert!(text.contains(&line), "missing {line} in:\n{text}");
    }
    served.stop().await;
}

#[tokio::test]
async fn health_and_reflection_are_open_per_config() {
    let t = tokens();
    let served = serve(AuthLayer::new(policy(&t.config)), None).await;
    let ch = plain_channel(served.addr).await;
    assert!(health(&ch, nobody()).await.is_ok(), "open by default");
    served.stop().await;

    let served = serve(
        AuthLayer::new(policy(&format!("{},open=none", t.config))),
        None,
    )
    .await;
    let ch = plain_channel(served.addr).await;
    let e = health(&ch, nobody()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(health(&ch, bearer(&t.viewer)).await.is_ok());
    served.stop().await;

    // open=health leaves reflection closed.
    let served = serve(
        AuthLayer::new(policy(&format!("{},open=health", t.config))),
        None,
    )
    .await;
    let ch = plain_channel(served.addr).await;
    assert!(health(&ch, nobody()).await.is_ok());
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(ch.clone());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let e = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    served.stop().await;
}

/// A fresh directory for certificates.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gekko-security-{name}-{}-{}",
        std::process::id(),
        gekko_security::totp::unix_now()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn tls_channel(
    addr: SocketAddr,
    tls: &ClientTls,
) -> Result<Channel, gekko_security::tls::ConnectError> {
    gekko_security::connect(&format!("https://localhost:{}", addr.port()), Some(tls)).await
}

#[tokio::test]
async fn tls_round_trip_for_grpc_and_http() {
    provider();
    let dir = scratch("tls");
    let files = certs::dev_certs(&dir).expect("dev certs");
    #[cfg(unix)]
    for key in [&files.ca_key, &files.server_key, &files.client_key] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
    let server_tls =
        ServerTls::from_files(&files.server_cert, &files.server_key, None).expect("tls");
    assert!(!server_tls.mtls());
    let t = tokens();
    let served = serve(AuthLayer::new(policy(&t.config)), Some(&server_tls)).await;

    let client = ClientTls::from_files(&files.ca_cert, None).expect("client tls");
    let ch = tls_channel(served.addr, &client)
        .await
        .expect("TLS connect");
    assert_eq!(place(&ch, bearer(&t.trader)).await.unwrap(), "bot/trader");
    // Plaintext to a TLS port does not work.
    let plain = Channel::from_shared(format!("http://{}", served.addr))
        .unwrap()
        .connect()
        .await;
    if let Ok(plain) = plain {
        assert!(status(&plain, bearer(&t.viewer)).await.is_err());
    }
    served.stop().await;

    // HTTP /livez over TLS with the same certificate.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let http = tokio::spawn({
        let token = token.clone();
        async move {
            serve_https(
                listener,
                &server_tls,
                Readiness::new(),
                recorder.handle(),
                token,
            )
            .await
        }
    });
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&files.ca_cert).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let body = https
        .get(format!("https://localhost:{}/livez", addr.port()))
        .send()
        .await
        .expect("GET /livez over TLS")
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), http).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn mtls_round_trip_and_a_client_without_a_certificate_is_refused() {
    provider();
    let dir = scratch("mtls");
    let files = certs::dev_certs(&dir).expect("dev certs");
    let server_tls =
        ServerTls::from_files(&files.server_cert, &files.server_key, Some(&files.ca_cert))
            .expect("tls");
    assert!(server_tls.mtls());
    let served = serve(AuthLayer::default(), Some(&server_tls)).await;

    let with_cert = ClientTls::from_files(
        &files.ca_cert,
        Some((&files.client_cert, &files.client_key)),
    )
    .expect("client identity");
    let ch = tls_channel(served.addr, &with_cert)
        .await
        .expect("mTLS connect");
    assert_eq!(status(&ch, nobody()).await.unwrap(), "anonymous/admin");

    let without = ClientTls::from_files(&files.ca_cert, None).expect("client tls");
    // TLS 1.3 may finish the client's side of the handshake before the server refuses, so
    // the refusal shows either at connect or at the first call.
    let refused = match tls_channel(served.addr, &without).await {
        Err(_) => true,
        Ok(ch) => status(&ch, nobody()).await.is_err(),
    };
    assert!(refused, "a client without a certificate got through");
    served.stop().await;

    // The HTTP listener enforces the same.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let http = tokio::spawn({
        let token = token.clone();
        async move {
            serve_https(
                listener,
                &server_tls,
                Readiness::new(),
                recorder.handle(),
                token,
            )
            .await
        }
    });
    let ca = || reqwest::Certificate::from_pem(&std::fs::read(&files.ca_cert).unwrap()).unwrap();
    let url = format!("https://localhost:{}/livez", addr.port());
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(ca())
        .build()
        .unwrap();
    assert!(
        anonymous.get(&url).send().await.is_err(),
        "no client certificate, no answer"
    );
    let mut pem = std::fs::read(&files.client_cert).unwrap();
    pem.extend(std::fs::read(&files.client_key).unwrap());
    let identified = reqwest::Client::builder()
        .add_root_certificate(ca())
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let body = identified
        .get(&url)
        .send()
        .await
        .expect("mTLS GET")
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), http).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_tls_files_are_errors_that_name_the_file_and_not_its_contents() {
    let dir = scratch("badpem");
    std::fs::create_dir_all(&dir).unwrap();
    let files = certs::dev_certs(&dir.join("good")).unwrap();
    let junk = dir.join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN PRIVATE KEY-----\nhunter2-secret-material\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let missing = dir.join("missing.pem");
    let cases: [(&Path, &Path, Option<&Path>, &Path); 4] = [
        (&missing, &files.server_key, None, &missing),
        (&files.server_cert, &junk, None, &junk),
        (&junk, &files.server_key, None, &junk),
        (&files.server_cert, &files.server_key, Some(&junk), &junk),
    ];
    for (cert, key, ca, named) in cases {
        let e = ServerTls::from_files(cert, key, ca).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(text.contains(&named.display().to_string()), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    // A key that is not the certificate's.
    let e = ServerTls::from_files(&files.server_cert, &files.client_key, None).unwrap_err();
    assert!(
        e.to_string().contains("server.key") || e.to_string().contains("client.key"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The per-peer failure limit also holds on a TLS listener, where the peer's address
/// arrives wrapped in the TLS connection info.
#[tokio::test]
async fn failures_are_rate_limited_over_tls_too() {
    provider();
    let dir = scratch("tls-limit");
    let files = certs::dev_certs(&dir).expect("dev certs");
    let server_tls =
        ServerTls::from_files(&files.server_cert, &files.server_key, None).expect("tls");
    let t = tokens();
    let served = serve(
        AuthLayer::new(policy(&format!("{},auth_failures_per_minute=2", t.config))),
        Some(&server_tls),
    )
    .await;
    let client = ClientTls::from_files(&files.ca_cert, None).expect("client tls");
    let ch = tls_channel(served.addr, &client)
        .await
        .expect("TLS connect");
    for _ in 0..2 {
        let e = status(&ch, bearer("gk_guess")).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let e = status(&ch, bearer(&t.viewer)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    served.stop().await;
}
