//! The `llm` service: `gekko.v1.LlmService` over real TCP gRPC, and the `llm` readiness
//! component driven by the start-up model-list check, against `LlmSim`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gekko_config::LlmConfig;
use gekko_llm::{LlmGrpc, LlmLinkService, LlmRouter};
use gekko_proto::v1 as pb;
use gekko_proto::v1::llm_service_client::LlmServiceClient;
use gekko_runtime::{GrpcServer, Readiness, Service, ServiceCtx, Shutdown};
use gekko_sim::llm::{Fault, LlmSim, LlmSimConfig, PAPER_KEY};
use tokio_util::sync::CancellationToken;

fn config(sim: &LlmSim, models: &str) -> LlmConfig {
    let vars: BTreeMap<String, String> = [
        ("OPENROUTER_API_KEY", PAPER_KEY.to_owned()),
        ("OPENROUTER_BASE_URL", format!("{}/api/v1", sim.base_url())),
        ("LLM_MODELS", models.to_owned()),
        (
            "LLM_SETTINGS",
            "probe_interval=200ms,connect_timeout=300ms".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    match gekko_config::from_vars(&vars) {
        Ok(l) => l.config.llm,
        Err(e) => panic!("config: {e}"),
    }
}

async fn serve(
    router: LlmRouter,
) -> (
    LlmServiceClient<tonic::transport::Channel>,
    CancellationToken,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let readiness = Readiness::new();
    let ready = readiness.component("test");
    ready.set_ready();
    let stop = CancellationToken::new();
    let server = GrpcServer::new(readiness).add_service(LlmGrpc::new(router).into_server());
    let token = stop.clone();
    tokio::spawn(async move {
        let _keep = ready;
        server.serve(listener, token).await
    });
    let client = LlmServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connects");
    (client, stop)
}

fn ask(role: &str, text: &str) -> pb::LlmCompleteRequest {
    pb::LlmCompleteRequest {
        role: role.to_owned(),
        messages: vec![pb::LlmChatMessage {
            role: "user".to_owned(),
            content: text.to_owned(),
        }],
        max_tokens: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_models_complete_and_stream_over_grpc() {
    let sim = LlmSim::start(LlmSimConfig::default()).await.unwrap();
    let router =
        LlmRouter::from_config(&config(&sim, "analyst=openrouter:openai/gpt-4o-mini")).unwrap();
    let (mut client, stop) = serve(router).await;

    let list = client
        .list_models(pb::LlmListModelsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.roles.len(), 1);
    assert_eq!(list.roles[0].primary, "openrouter:openai/gpt-4o-mini");
    assert_eq!(list.roles[0].secondary, "");
    let p = &list.providers[0];
    assert!(p.reachable, "{p:?}");
    assert_eq!(p.circuit, "closed");
    assert!(p.missing.is_empty());
    let m = p
        .models
        .iter()
        .find(|m| m.configured)
        .expect("configured model listed");
    assert_eq!(m.id, "openai/gpt-4o-mini");
    assert_eq!(m.prompt_price, "0.00000015");

    let c = client
        .complete(ask("analyst", "over grpc"))
        .await
        .expect("complete")
        .into_inner();
    assert_eq!(c.content, "sim reply to: over grpc");
    assert_eq!(c.provider, "openrouter");
    assert_eq!(c.role, "analyst");
    let u = c.usage.expect("usage");
    assert_eq!(u.total_tokens, 7);
    assert_eq!(u.cost_usd, "0.0000033");
    assert!(c.failover.is_none());

    // An empty role means the first configured one.
    let mut stream = client
        .complete_stream(ask("", "stream over grpc"))
        .await
        .expect("stream")
        .into_inner();
    let mut content = String::new();
    let mut done = None;
    while let Some(ev) = stream.message().await.expect("event") {
        content.push_str(&ev.delta);
        if let Some(d) = ev.done {
            done = Some(d);
        }
    }
    let done = done.expect("a done event");
    assert_eq!(content, "sim reply to: stream over grpc");
    assert_eq!(done.content, content);
    assert!(done.usage.is_some());

    // Refusals map to precise codes and name provider and status.
    sim.inject(Fault::Status {
        code: 402,
        retry_after_s: None,
        count: 1,
    });
    let err = client.complete(ask("analyst", "x")).await.expect_err("402");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(
        err.message().contains("openrouter") && err.message().contains("402"),
        "{}",
        err.message()
    );
    let err = client.complete(ask("nope", "x")).await.expect_err("role");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let mut empty = ask("analyst", "x");
    empty.messages.clear();
    let err = client.complete(empty).await.expect_err("no messages");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let mut bad_role = ask("analyst", "x");
    bad_role.messages[0].role = "wizard".to_owned();
    let err = client.complete(bad_role).await.expect_err("bad role");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    // A mid-stream failure after content ends the gRPC stream with an error status.
    sim.inject(Fault::MidStreamError {
        code: 502,
        after_chunks: 1,
        count: 1,
    });
    let mut stream = client
        .complete_stream(ask("analyst", "a b c d"))
        .await
        .expect("stream opens")
        .into_inner();
    let mut got = String::new();
    let err = loop {
        match stream.message().await {
            Ok(Some(ev)) => got.push_str(&ev.delta),
            Ok(None) => panic!("the stream should end with an error"),
            Err(e) => break e,
        }
    };
    assert!(!got.is_empty());
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert!(err.message().contains("502"), "{}", err.message());
    stop.cancel();
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_model_list_check() {
    let sim = LlmSim::start(LlmSimConfig::default()).await.unwrap();
    let shutdown = Shutdown::new();
    let bus: Arc<dyn gekko_bus::Bus> = Arc::new(gekko_bus::MemoryBus::new());

    // A configured model the provider does not list: not ready, named.
    let readiness = Readiness::new();
    let ctx = ServiceCtx::new(bus.clone(), readiness.clone(), &shutdown);
    let settings = config(
        &sim,
        "analyst=openrouter:openai/gpt-4o-mini;summary=openrouter:vendor/absent",
    );
    let started = LlmLinkService::start(settings, &ctx).await.expect("starts");
    gekko_testkit::wait_until("the missing model named", Duration::from_secs(5), || {
        readiness
            .report()
            .iter()
            .any(|c| c.name == "llm" && !c.ready && c.detail.contains("vendor/absent"))
    })
    .await;
    drop(started);

    // Every model listed: ready; the provider stops: not ready again.
    let readiness = Readiness::new();
    let ctx = ServiceCtx::new(bus, readiness.clone(), &shutdown);
    let settings = config(&sim, "analyst=openrouter:openai/gpt-4o-mini");
    let _started = LlmLinkService::start(settings, &ctx).await.expect("starts");
    gekko_testkit::wait_until("llm ready", Duration::from_secs(5), || readiness.is_ready()).await;
    sim.stop().await;
    gekko_testkit::wait_until("llm not ready", Duration::from_secs(5), || {
        readiness
            .report()
            .iter()
            .any(|c| c.name == "llm" && !c.ready && c.detail.contains("not reachable"))
    })
    .await;
    assert!(
        LlmLinkService::resolve(&gekko_config::GekkoConfig::default()).is_err(),
        "no LLM_MODELS, no service"
    );
    shutdown.token().cancel();
}
