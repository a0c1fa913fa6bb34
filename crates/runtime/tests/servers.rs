//! The HTTP and gRPC servers over real sockets on ephemeral ports.
//!
//! Tests poll for a condition with a deadline instead of sleeping a fixed time, so they
//! are fast when things work and fail with a clear message when they do not.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use gekko_proto::v1::{GetStatusRequest, GetStatusResponse};
use gekko_runtime::{GrpcServer, Readiness, install_prometheus, serve_http};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

mod support;
use support::TestSystem;

const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `check` until it yields `Some`, failing the test after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    gekko_testkit::poll_some(what, DEADLINE, check).await
}

async fn ephemeral() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

#[tokio::test]
async fn http_endpoints_follow_readiness_and_shut_down() {
    let handle = install_prometheus().expect("install recorder");
    metrics::counter!("gekko_runtime_http_test_total").increment(7);

    let readiness = Readiness::new();
    let component = readiness.component("bus");
    let (listener, addr) = ephemeral().await;
    let token = CancellationToken::new();
    let server = tokio::spawn(serve_http(
        listener,
        readiness.clone(),
        handle,
        token.clone(),
    ));

    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");

    let livez = client.get(url("/livez")).send().await.expect("GET /livez");
    assert_eq!(livez.status(), 200);
    assert_eq!(livez.text().await.expect("body"), "ok");

    let readyz = client
        .get(url("/readyz"))
        .send()
        .await
        .expect("GET /readyz");
    assert_eq!(readyz.status(), 503);
    let body: serde_json::Value = readyz.json().await.expect("json");
    assert_eq!(body["ready"], false);
    assert_eq!(body["components"][0]["name"], "bus");
    assert_eq!(body["components"][0]["ready"], false);
    assert_eq!(body["components"][0]["detail"], "starting");

    component.set_ready();
    let body: serde_json::Value = eventually("/readyz to turn 200", || async {
        let resp = client.get(url("/readyz")).send().await.ok()?;
        (resp.status() == 200).then_some(())?;
        resp.json().await.ok()
    })
    .await;
    assert_eq!(body["ready"], true);
    assert_eq!(body["components"][0]["ready"], true);

    let metrics = client
        .get(url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(metrics.status(), 200);
    let content_type = metrics.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .expect("ascii header")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = metrics.text().await.expect("body");
    assert!(text.contains("gekko_runtime_http_test_total 7"), "{text}");
    assert!(text.contains("gekko_ready 1"), "{text}");
    assert!(
        text.contains("gekko_component_ready{component=\"bus\"} 1"),
        "{text}"
    );

    token.cancel();
    tokio::time::timeout(DEADLINE, server)
        .await
        .expect("HTTP server did not stop after cancellation")
        .expect("server task panicked")
        .expect("server returned an error");
}

async fn health_status(channel: &Channel, service: &str) -> Option<i32> {
    let response = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .ok()?;
    Some(response.into_inner().status)
}

#[tokio::test]
async fn grpc_server_has_health_and_reflection() {
    let readiness = Readiness::new();
    let component = readiness.component("venue");
    let (listener, addr) = ephemeral().await;
    let token = CancellationToken::new();
    let server = tokio::spawn(
        GrpcServer::new(readiness.clone())
            .add_service({
                // Reports whatever the latch says.
                let latch = readiness.clone();
                TestSystem::new(move |_| GetStatusResponse {
                    ready: latch.is_ready(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..GetStatusResponse::default()
                })
                .into_server()
            })
            .serve(listener, token.clone()),
    );

    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .connect()
        .await
        .expect("connect");

    let not_serving = ServingStatus::NotServing as i32;
    let serving = ServingStatus::Serving as i32;
    assert_eq!(health_status(&channel, "").await, Some(not_serving));
    assert_eq!(
        health_status(&channel, "gekko.v1.SystemService").await,
        Some(not_serving)
    );

    component.set_ready();
    eventually("health to report SERVING", || async {
        (health_status(&channel, "").await == Some(serving)).then_some(())
    })
    .await;
    assert_eq!(
        health_status(&channel, "gekko.v1.SystemService").await,
        Some(serving)
    );

    // The application service itself answers.
    let status = gekko_proto::v1::system_service_client::SystemServiceClient::new(channel.clone())
        .get_status(GetStatusRequest {})
        .await
        .expect("GetStatus")
        .into_inner();
    assert!(status.ready);

    component.set_not_ready("venue disconnected");
    eventually("health to report NOT_SERVING again", || async {
        (health_status(&channel, "").await == Some(not_serving)).then_some(())
    })
    .await;

    let services = list_services(&channel).await;
    for expected in [
        "gekko.v1.SystemService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} missing from {services:?}"
        );
    }

    let alpha = list_services_v1alpha(&channel).await;
    assert!(
        alpha.iter().any(|s| s == "gekko.v1.SystemService"),
        "v1alpha reflection: {alpha:?}"
    );

    // An open Watch stream must not hold the graceful shutdown open.
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch
        .message()
        .await
        .expect("watch item")
        .expect("stream open");
    assert_eq!(first.status, not_serving);

    token.cancel();
    tokio::time::timeout(DEADLINE, server)
        .await
        .expect("gRPC server did not stop after cancellation")
        .expect("server task panicked")
        .expect("server returned an error");
}

async fn list_services(channel: &Channel) -> Vec<String> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection call")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection response")
        .expect("one response");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection response: {other:?}"),
    }
}

/// Older clients (grpcurl < 1.8.8, Postman, evans) only speak v1alpha.
async fn list_services_v1alpha(channel: &Channel) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let response = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection call")
        .into_inner()
        .message()
        .await
        .expect("reflection response")
        .expect("one response");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection response: {other:?}"),
    }
}
