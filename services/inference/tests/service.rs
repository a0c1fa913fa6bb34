//! The inference service end to end: quotes on a real Redis bus become signals on the
//! bus, and gRPC `Predict` validates its input.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gekko_bus::{Bus, RedisBus, RedisBusOptions, StartFrom, Topic, names};
use gekko_core::{InstrumentId, Quote, Signal, VenueId};
use gekko_proto::v1 as pb;
use gekko_proto::v1::inference_service_client::InferenceServiceClient;
use gekko_runtime::{GrpcServer, Readiness};
use gekko_testkit::RedisServer;
use inference_service::{InferenceSettings, start};
use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn settings(threshold: f32) -> InferenceSettings {
    InferenceSettings {
        model: "direction".into(),
        model_root: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"),
        device: gekko_inference::device::DevicePreference::Cpu,
        cpu_threads: 0,
        gpu_memory_budget_mb: 1024,
        max_batch: 64,
        max_wait: Duration::from_millis(2),
        update_every: Duration::from_secs(60),
        confidence_threshold: threshold,
        venues: vec![VenueId::BinanceUs],
        prediction: gekko_config::PredictionParams::default(),
    }
}

/// A real Redis and a bus on it (the server lives as long as the first value).
async fn redis_bus() -> (RedisServer, Arc<dyn Bus>) {
    let redis = RedisServer::start();
    let bus: Arc<dyn Bus> = Arc::new(
        RedisBus::connect(&redis.url(), RedisBusOptions::default())
            .await
            .unwrap(),
    );
    (redis, bus)
}

/// What the service host would give the service: readiness, a tracker, a cancel token.
fn host() -> (Readiness, TaskTracker, CancellationToken) {
    (
        Readiness::new(),
        TaskTracker::new(),
        CancellationToken::new(),
    )
}

/// Cancels the service and waits (at most 10 s) for its tasks.
async fn stop(cancel: &CancellationToken, tracker: &TaskTracker) {
    cancel.cancel();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .unwrap();
}

fn quote(i: u32) -> Quote {
    // A gently oscillating market with varying imbalance.
    let mid = Decimal::from(30_000) + Decimal::from(i % 7) - Decimal::from(i % 3);
    Quote {
        instrument: InstrumentId::new(VenueId::BinanceUs, "BTC", "USD"),
        bid: mid - Decimal::new(5, 1),
        bid_size: Decimal::from(1 + i % 5),
        ask: mid + Decimal::new(5, 1),
        ask_size: Decimal::from(1 + (i + 2) % 5),
        ts_ms: 1_700_000_000_000 + i64::from(i),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_on_the_bus_become_signals_on_the_bus() {
    let (_redis, bus) = redis_bus().await;
    let (readiness, tracker, cancel) = host();
    let svc = start(
        settings(0.0),
        bus.clone(),
        &readiness,
        &tracker,
        cancel.clone(),
    )
    .await
    .unwrap();
    assert!(readiness.is_ready(), "{:?}", readiness.report());
    let window = svc.registry.current().meta().window;
    // Let the consumer attach to the stream before quotes flow (it follows from "now").
    tokio::time::sleep(Duration::from_millis(700)).await;

    let quotes: Topic<Quote> = Topic::capped(names::quotes("binanceus"), 10_000, 1);
    let n = u32::try_from(window).unwrap() + 20;
    for i in 0..n {
        quotes.publish(&*bus, "test", &quote(i)).await.unwrap();
    }
    let signals: Topic<Signal> = Topic::capped(names::SIGNALS, 10_000, 1);
    let mut reader = bus
        .tail_reader(signals.name(), StartFrom::Beginning)
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while got.len() < 20 && tokio::time::Instant::now() < deadline {
        for d in reader.read(100, Duration::from_millis(200)).await.unwrap() {
            got.push(signals.decode(&d).unwrap().payload);
        }
    }
    // Window w needs w returns, i.e. w+1 quotes: n quotes give n - w signals.
    assert_eq!(
        got.len(),
        20,
        "one signal per quote once the window is full"
    );
    for s in &got {
        assert_eq!(s.model, "direction");
        assert_eq!(s.version, 1);
        assert_eq!(s.instrument.pair(), "BTC-USD");
        assert!((0.5..=1.0).contains(&s.confidence), "{s:?}");
        assert!((s.p_up >= 0.5) == (s.direction == gekko_core::Direction::Up));
    }
    stop(&cancel, &tracker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_below_the_confidence_threshold_are_suppressed() {
    let (_redis, bus) = redis_bus().await;
    let (readiness, tracker, cancel) = host();
    // A confidence above 1 can never be reached.
    let svc = start(
        settings(1.01),
        bus.clone(),
        &readiness,
        &tracker,
        cancel.clone(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let quotes: Topic<Quote> = Topic::capped(names::quotes("binanceus"), 10_000, 1);
    let window = u32::try_from(svc.registry.current().meta().window).unwrap();
    for i in 0..window + 10 {
        quotes.publish(&*bus, "test", &quote(i)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(bus.stream_len(names::SIGNALS).await.unwrap(), 0);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_predict_validates_input_and_serves_the_model() {
    let bus: Arc<dyn Bus> = Arc::new(gekko_bus::MemoryBus::new());
    let (readiness, tracker, cancel) = host();
    let svc = start(settings(0.5), bus, &readiness, &tracker, cancel.clone())
        .await
        .unwrap();
    let input_len = svc.registry.current().input_len();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = GrpcServer::new(readiness.clone())
        .add_service(inference_service::grpc::InferenceGrpc::new(svc).into_server());
    tracker.spawn(server.serve(listener, cancel.clone()));
    let mut c = InferenceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();

    let info = c
        .model_info(pb::ModelInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.model, "direction");
    assert_eq!(info.input_len as usize, input_len);
    assert_eq!(info.device, "cpu");

    let row = |v: Vec<f32>| pb::FeatureRow { values: v };
    let ok = c
        .predict(pb::PredictRequest {
            rows: vec![row(vec![0.0; input_len]), row(vec![0.001; input_len])],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.predictions.len(), 2);
    assert_eq!((ok.model.as_str(), ok.version), ("direction", 1));

    let cases = [
        (vec![row(vec![0.0; input_len - 1])], "expects"),
        (
            vec![
                row(vec![0.0; input_len]),
                row({
                    let mut v = vec![0.0; input_len];
                    v[3] = f32::NAN;
                    v
                }),
            ],
            "rows[1].values[3]",
        ),
        (
            vec![row({
                let mut v = vec![0.0; input_len];
                v[0] = f32::INFINITY;
                v
            })],
            "not a finite",
        ),
        (vec![], "at least one"),
    ];
    for (rows, needle) in cases {
        let err = c.predict(pb::PredictRequest { rows }).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(needle), "{needle}: {err:?}");
    }
    stop(&cancel, &tracker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prediction_interval_samples_each_instruments_quotes_by_their_timestamps() {
    let (_redis, bus) = redis_bus().await;
    let (readiness, tracker, cancel) = host();
    let mut s = settings(0.0);
    // Quotes 1 ms apart, observed every 10 ms of their own timestamps.
    s.prediction.interval = Duration::from_millis(10);
    let svc = start(s, bus.clone(), &readiness, &tracker, cancel.clone())
        .await
        .unwrap();
    let window = u32::try_from(svc.registry.current().meta().window).unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;

    let quotes: Topic<Quote> = Topic::capped(names::quotes("binanceus"), 10_000, 1);
    // (window + 6) observations at i = 0, 10, 20, ...: as without sampling, n
    // observations give n - window signals, so 6, each from a sampled quote.
    let observed = window + 6;
    for i in 0..observed * 10 {
        quotes.publish(&*bus, "test", &quote(i)).await.unwrap();
    }
    let signals: Topic<Signal> = Topic::capped(names::SIGNALS, 10_000, 1);
    let mut reader = bus
        .tail_reader(signals.name(), StartFrom::Beginning)
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while got.len() < 6 && tokio::time::Instant::now() < deadline {
        for d in reader.read(100, Duration::from_millis(200)).await.unwrap() {
            got.push(signals.decode(&d).unwrap().payload);
        }
    }
    // Nothing more arrives: the other quotes were skipped, not queued.
    for d in reader.read(100, Duration::from_secs(2)).await.unwrap() {
        got.push(signals.decode(&d).unwrap().payload);
    }
    let offsets: Vec<i64> = got
        .iter()
        .map(|s| s.quote_ts_ms - 1_700_000_000_000)
        .collect();
    let expected: Vec<i64> = (window..observed).map(|k| i64::from(k) * 10).collect();
    assert_eq!(
        offsets, expected,
        "one signal per sampled quote once the window is full"
    );
    stop(&cancel, &tracker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_trained_with_another_window_or_horizon_is_refused() {
    let bus: Arc<dyn Bus> = Arc::new(gekko_bus::MemoryBus::new());
    let (readiness, tracker, cancel) = host();
    let mut s = settings(0.0);
    s.prediction.window = 64;
    s.prediction.window_set = true;
    s.prediction.horizon = 4;
    s.prediction.horizon_set = true;
    let err = start(s, bus.clone(), &readiness, &tracker, cancel.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("PREDICTION_PARAMETERS window=64")
            && err.contains("trained with window 32")
            && err.contains("horizon=4")
            && err.contains("trained with horizon 1"),
        "{err}"
    );
    assert!(!readiness.is_ready());

    // The model's own values (set explicitly) are accepted.
    let mut s = settings(0.0);
    s.prediction.window = 32;
    s.prediction.window_set = true;
    s.prediction.horizon = 1;
    s.prediction.horizon_set = true;
    start(s, bus, &readiness, &tracker, cancel.clone())
        .await
        .unwrap();
    stop(&cancel, &tracker).await;
}
